package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/libdns/libdns"
)

// PowerDNS's own HTTP API (api=yes): GET and PATCH
// /api/v1/servers/SERVER/zones/ZONE, with X-API-Key. A PATCH replaces
// whole RRsets, each in one transaction of PowerDNS's backend.
func init() {
	constructors["powerdns"] = func(s Settings) (Provider, error) {
		if s.URL == "" {
			return nil, errors.New("powerdns: api_url is needed, e.g. http://127.0.0.1:8081")
		}
		if s.ServerID == "" {
			s.ServerID = "localhost"
		}
		return &PowerDNS{URL: strings.TrimSuffix(s.URL, "/"), Key: s.Key, ServerID: s.ServerID}, nil
	}
}

// PowerDNS is a libdns provider for PowerDNS's HTTP API.
type PowerDNS struct {
	URL, Key, ServerID string
	Client             *http.Client // a client with a 10 s timeout if nil
}

type pdnsRecord struct {
	Content  string `json:"content"`
	Disabled bool   `json:"disabled"`
}

type pdnsRRset struct {
	Name       string       `json:"name"`
	Type       string       `json:"type"`
	TTL        uint32       `json:"ttl,omitempty"`
	ChangeType string       `json:"changetype,omitempty"`
	Records    []pdnsRecord `json:"records"`
}

func (p *PowerDNS) do(ctx context.Context, method, zone string, body any) ([]byte, error) {
	u := p.URL + "/api/v1/servers/" + url.PathEscape(p.ServerID) + "/zones/" + url.PathEscape(zone)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", p.Key)
	req.Header.Set("Content-Type", "application/json")
	c := http.Client{Timeout: 10 * time.Second}
	if p.Client != nil {
		c = *p.Client
	}
	// A redirect is answered, never followed: Go would send the API key
	// to wherever it points, another host included.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, &APIError{Status: resp.StatusCode, Body: string(b[:min(len(b), 512)])}
	}
	return b, nil
}

// GetRecords returns the zone's records (disabled ones left out).
func (p *PowerDNS) GetRecords(ctx context.Context, zone string) ([]libdns.Record, error) {
	b, err := p.do(ctx, http.MethodGet, zone, nil)
	if err != nil {
		return nil, err
	}
	var z struct {
		RRsets []pdnsRRset `json:"rrsets"`
	}
	if err := json.Unmarshal(b, &z); err != nil {
		return nil, fmt.Errorf("powerdns: zone %s: %w", zone, err)
	}
	var out []libdns.Record
	for _, s := range z.RRsets {
		for _, r := range s.Records {
			if r.Disabled {
				continue
			}
			data := r.Content
			if s.Type == "TXT" {
				if u, err := strconv.Unquote(data); err == nil {
					data = u
				}
			}
			rr := libdns.RR{Name: libdns.RelativeName(s.Name, zone), TTL: time.Duration(s.TTL) * time.Second, Type: s.Type, Data: data}
			if rec, err := rr.Parse(); err == nil {
				out = append(out, rec)
			} else {
				out = append(out, rr)
			}
		}
	}
	return out, nil
}

// rrsets groups recs by (name, type), as a PATCH wants them.
func rrsets(zone string, recs []libdns.Record, change string) []pdnsRRset {
	var out []pdnsRRset
	at := map[string]int{}
	for _, r := range recs {
		rr := r.RR()
		k := rr.Name + " " + rr.Type
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, pdnsRRset{Name: libdns.AbsoluteName(rr.Name, zone), Type: rr.Type, TTL: uint32(rr.TTL / time.Second), ChangeType: change, Records: []pdnsRecord{}})
		}
		if change == "DELETE" {
			continue
		}
		content := rr.Data
		if rr.Type == "TXT" {
			content = strconv.Quote(rr.Data)
		}
		out[i].Records = append(out[i].Records, pdnsRecord{Content: content})
	}
	return out
}

// SetRecords replaces the RRsets of recs, in one PATCH.
func (p *PowerDNS) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	if _, err := p.do(ctx, http.MethodPatch, zone, map[string]any{"rrsets": rrsets(zone, recs, "REPLACE")}); err != nil {
		return nil, err
	}
	return recs, nil
}

// ChangeRecords replaces the RRsets of set and deletes those del names,
// in one PATCH: one transaction of PowerDNS's backend.
func (p *PowerDNS) ChangeRecords(ctx context.Context, zone string, set, del []libdns.Record) error {
	_, err := p.do(ctx, http.MethodPatch, zone, map[string]any{"rrsets": append(rrsets(zone, set, "REPLACE"), rrsets(zone, del, "DELETE")...)})
	return err
}

// DeleteRecords deletes the whole RRsets recs name (sshdyn asks for no
// more than that).
func (p *PowerDNS) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	if _, err := p.do(ctx, http.MethodPatch, zone, map[string]any{"rrsets": rrsets(zone, recs, "DELETE")}); err != nil {
		return nil, err
	}
	return recs, nil
}
