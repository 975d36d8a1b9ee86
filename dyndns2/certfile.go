package dyndns2

import (
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
)

// CertFile serves a TLS certificate from a certificate and a key file.
// Reload loads them again (serve's watcher calls it when either file
// changes, and on SIGHUP), so a renewed certificate needs no restart; a
// pair that does not load keeps the one before in use. A handshake only
// reads the certificate in use: no file is looked at per connection.
// Use NewCertFile.
type CertFile struct {
	certPath, keyPath string

	mu   sync.Mutex // serializes Reload
	cert atomic.Pointer[tls.Certificate]
}

// NewCertFile loads the pair, or says why it cannot.
func NewCertFile(certPath, keyPath string) (*CertFile, error) {
	c := &CertFile{certPath: certPath, keyPath: keyPath}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Paths returns the certificate's and the key's file.
func (c *CertFile) Paths() []string { return []string{c.certPath, c.keyPath} }

// Reload reads the pair again; on error the one before stays in use.
func (c *CertFile) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("TLS: %s, %s: %w", c.certPath, c.keyPath, err)
	}
	c.cert.Store(&cert)
	return nil
}

// GetCertificate is a tls.Config GetCertificate function.
func (c *CertFile) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}
