package docs

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// A man page made from sections of reference.md: the one source of the
// reference and the manual pages. Each page takes whole "## " sections;
// its other parts (name, synopsis, see also) are written here.
type manPage struct {
	file, name, section, title string
	summary                    string // the NAME line's description
	synopsis                   []string
	intro                      string
	sections                   []string // reference.md's "## " headings, in order
	seeAlso                    string
}

var manPages = []manPage{
	{
		file: "sshdyn.8", name: "sshdyn", section: "8", title: "System Manager's Manual",
		summary: "dynamic DNS over SSH",
		synopsis: []string{
			"sshdyn serve [--config FILE]",
			"sshdyn check [--config FILE] [--dns | --live]",
			"sshdyn hosts | history | notify-test --config FILE ...",
			"sshdyn passwd | demo | version",
			"ssh [-4|-6] [-p PORT] SERVER update | offline | status | history | acme | ip | help",
		},
		intro: "sshdyn is an SSH server that keeps DNS names pointed at their machines' changing addresses. " +
			"A client's SSH public key (or OpenSSH certificate) is its identity, and an authorized file maps it to host names; " +
			"the client runs `ssh SERVER update`, and the address it connects from becomes its host's A (IPv4) or AAAA (IPv6) record. " +
			"sshdyn writes it to the zone's primary with TSIG-signed RFC 2136 updates (BIND, Knot, PowerDNS), to the zone it serves itself, " +
			"to tinydns's data, or through a DNS provider's HTTP API. Routers reach the same identities through a dyndns2 HTTP front.",
		sections: []string{"The sshdyn program", "Commands", "Log", "Metrics"},
		seeAlso:  "sshdyn.toml(5), sshdyn-authorized(5), ssh(1), ssh-keygen(1), named(8), knotd(8), pdns_server(1)",
	},
	{
		file: "sshdyn.toml.5", name: "sshdyn.toml", section: "5", title: "File Formats Manual",
		summary:  "configuration file of sshdyn",
		synopsis: []string{"/etc/sshdyn/sshdyn.toml"},
		sections: []string{"Configuration"},
		seeAlso:  "sshdyn(8), sshdyn-authorized(5)",
	},
	{
		file: "sshdyn-authorized.5", name: "sshdyn-authorized", section: "5", title: "File Formats Manual",
		summary:  "the identities sshdyn accepts, and their hosts",
		synopsis: []string{"/etc/sshdyn/authorized_keys"},
		sections: []string{"Authorized lines"},
		seeAlso:  "sshdyn(8), sshdyn.toml(5), sshd(8) (AUTHORIZED_KEYS FILE FORMAT), ssh-keygen(1) (CERTIFICATES)",
	},
}

// ManPages renders sshdyn's manual pages from reference, the text of
// docs/reference.md, in man(7): a file name to its text. date and
// version go in the title lines.
func ManPages(reference string, date time.Time, version string) (map[string]string, error) {
	secs := referenceSections(reference)
	out := map[string]string{}
	for _, p := range manPages {
		var b strings.Builder
		fmt.Fprintf(&b, ".\\\" Made from sshdyn's docs/reference.md by docs.ManPages: edit that, not this.\n")
		fmt.Fprintf(&b, ".TH %s %s %s %s %s\n", quote(strings.ToUpper(p.name)), p.section, quote(date.UTC().Format("2006-01-02")), quote("sshdyn "+version), quote(p.title))
		fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", escape(p.name), escape(p.summary))
		b.WriteString(".SH SYNOPSIS\n")
		for i, s := range p.synopsis {
			if i > 0 {
				b.WriteString(".br\n")
			}
			fmt.Fprintf(&b, "\\fB%s\\fR\n", escape(s))
		}
		if p.intro != "" {
			b.WriteString(".SH DESCRIPTION\n")
			b.WriteString(inline(p.intro) + "\n")
		}
		for _, name := range p.sections {
			text, ok := secs[name]
			if !ok {
				return nil, fmt.Errorf("%s: reference.md has no section %q", p.file, name)
			}
			heading := strings.ToUpper(name)
			if p.section == "5" && len(p.sections) == 1 {
				heading = "DESCRIPTION"
			}
			if name == "Commands" {
				heading = "SSH COMMANDS"
			}
			fmt.Fprintf(&b, ".SH %s\n", quote(heading))
			b.WriteString(body(text))
		}
		fmt.Fprintf(&b, ".SH SEE ALSO\n%s\n", escape(p.seeAlso))
		out[p.file] = b.String()
	}
	return out, nil
}

// referenceSections splits reference.md into its "## " sections.
func referenceSections(ref string) map[string]string {
	out := map[string]string{}
	parts := strings.Split("\n"+ref, "\n## ")
	for _, part := range parts[1:] {
		name, text, _ := strings.Cut(part, "\n")
		out[strings.TrimSpace(name)] = text
	}
	return out
}

// body renders a section's Markdown: paragraphs, tables (as tagged
// paragraphs: the first column is the tag, the others follow with
// their headers), lists, code blocks and "### " subsections.
func body(md string) string {
	var b strings.Builder
	lines := strings.Split(md, "\n")
	fresh := true // right after .SH or .SS: no paragraph macro
	pp := func() {
		if !fresh {
			b.WriteString(".PP\n")
		}
		fresh = false
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "### ") && !strings.HasPrefix(line, "```") && !strings.HasPrefix(line, "|") && !strings.HasPrefix(line, "- ") {
			pp()
		}
		switch {
		case strings.TrimSpace(line) == "":
		case strings.HasPrefix(line, "```"):
			pp()
			b.WriteString(".RS 4\n.nf\n")
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				b.WriteString(literal(lines[i]) + "\n")
			}
			b.WriteString(".fi\n.RE\n")
		case strings.HasPrefix(line, "### "):
			fmt.Fprintf(&b, ".SS %s\n", quote(plain(strings.TrimPrefix(line, "### "))))
			fresh = true
		case strings.HasPrefix(line, "|"):
			var rows [][]string
			for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
				rows = append(rows, cells(lines[i]))
			}
			i--
			table(&b, rows)
			fresh = false
		case strings.HasPrefix(line, "- "):
			for ; i < len(lines) && strings.HasPrefix(lines[i], "- "); i++ {
				fmt.Fprintf(&b, ".IP \\(bu 2\n%s\n", inline(strings.TrimPrefix(lines[i], "- ")))
			}
			i--
			fresh = false
		default:
			para := []string{strings.TrimSpace(line)}
			for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" && !strings.HasPrefix(lines[i+1], "|") && !strings.HasPrefix(lines[i+1], "```") && !strings.HasPrefix(lines[i+1], "- ") && !strings.HasPrefix(lines[i+1], "#") {
				i++
				para = append(para, strings.TrimSpace(lines[i]))
			}
			fmt.Fprintf(&b, "%s\n", inline(strings.Join(para, " ")))
		}
	}
	return b.String()
}

// cells splits a table row into its cells, trimmed; a `|` inside
// backquotes does not split.
func cells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(strings.TrimSuffix(row, "|"), "|")
	var out []string
	var cur strings.Builder
	code := false
	for _, r := range row {
		switch {
		case r == '`':
			code = !code
			cur.WriteRune(r)
		case r == '|' && !code:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(out, strings.TrimSpace(cur.String()))
}

// table renders rows (a header, the separator, the rows) as tagged
// paragraphs: the first column the tag, the description (a column
// headed what, does, meaning or effect) as it is, the others labelled
// with their headers ("Default: 60.").
func table(b *strings.Builder, rows [][]string) {
	if len(rows) < 2 {
		return
	}
	header := rows[0]
	for _, r := range rows[2:] {
		fmt.Fprintf(b, ".TP\n%s\n", inline(r[0]))
		var rest []string
		for j := 1; j < len(r) && j < len(header); j++ {
			if r[j] == "" {
				continue
			}
			if h := header[j]; h == "what" || h == "does" || h == "meaning" || strings.HasPrefix(h, "effect") {
				rest = append(rest, inline(r[j])) // the description, unlabelled
				continue
			}
			rest = append(rest, inline(strings.ToUpper(header[j][:1])+header[j][1:]+": "+r[j]+"."))
		}
		b.WriteString(strings.Join(rest, "\n.br\n") + "\n")
	}
}

var (
	codeRE  = regexp.MustCompile("`([^`]*)`")
	linkRE2 = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	boldRE  = regexp.MustCompile(`\*\*([^*]+)\*\*`)
)

// inline renders Markdown's inline forms: `code` bold, **strong** bold,
// [text](link) as its text.
func inline(s string) string {
	s = linkRE2.ReplaceAllString(s, "$1")
	var b strings.Builder
	last := 0
	for _, m := range codeRE.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(emphasis(escape(s[last:m[0]])))
		b.WriteString("\\fB" + escape(s[m[2]:m[3]]) + "\\fR")
		last = m[1]
	}
	b.WriteString(emphasis(escape(s[last:])))
	return lineStart(b.String())
}

// emphasis renders **strong** in already escaped text.
func emphasis(s string) string { return boldRE.ReplaceAllString(s, `\fB$1\fR`) }

// plain is s without Markdown's marks, escaped.
func plain(s string) string {
	s = linkRE2.ReplaceAllString(s, "$1")
	return escape(strings.NewReplacer("`", "", "**", "").Replace(s))
}

// escape makes text safe in man(7): backslashes and hyphen-minus signs
// (which are options and names, not hyphens, in this manual).
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

// literal is a code block's line, escaped, kept from starting a request.
func literal(s string) string { return lineStart(escape(s)) }

// lineStart keeps a line from starting with a control character.
func lineStart(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

// quote is a macro argument: in double quotes, with a quote inside
// doubled.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
