package dyndns2

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertFile serves a TLS certificate from a certificate and a key file,
// and loads them again when either changes on disk (size, mtime), so a
// renewed certificate needs no restart. A pair that does not load keeps
// the one before in use. Use NewCertFile.
type CertFile struct {
	certPath, keyPath string

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp [2]fileStamp
	// OnReload, if set, is told of every reload and its error.
	OnReload func(error)
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// NewCertFile loads the pair, or says why it cannot.
func NewCertFile(certPath, keyPath string) (*CertFile, error) {
	c := &CertFile{certPath: certPath, keyPath: keyPath}
	stamp, err := c.stamps()
	if err != nil {
		return nil, err
	}
	if err := c.load(stamp); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CertFile) stamps() ([2]fileStamp, error) {
	var out [2]fileStamp
	for i, p := range []string{c.certPath, c.keyPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return out, fmt.Errorf("TLS: %w", err)
		}
		out[i] = fileStamp{fi.Size(), fi.ModTime()}
	}
	return out, nil
}

// load reads the pair; c.mu is held or c is new.
func (c *CertFile) load(stamp [2]fileStamp) error {
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("TLS: %s, %s: %w", c.certPath, c.keyPath, err)
	}
	c.cert, c.stamp = &cert, stamp
	return nil
}

// GetCertificate is a tls.Config GetCertificate function.
func (c *CertFile) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	stamp, serr := c.stamps()
	c.mu.Lock()
	defer c.mu.Unlock()
	if serr == nil && stamp != c.stamp {
		err := c.load(stamp)
		if err != nil {
			c.stamp = stamp // once per version: a half-written pair is tried again when it changes
		}
		if c.OnReload != nil {
			c.OnReload(err)
		}
	}
	return c.cert, nil
}
