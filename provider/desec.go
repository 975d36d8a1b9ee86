package provider

import (
	"errors"

	"github.com/libdns/desec"
)

// deSEC (desec.io), through github.com/libdns/desec: the token is the
// key file's content. Built and wired like any provider; sshdyn's tests
// cannot reach desec.io, so it is not tested against the real service.
// Another libdns provider is a file like this one.
func init() {
	constructors["desec"] = func(s Settings) (Provider, error) {
		if s.Key == "" {
			return nil, errors.New("desec: api_key_file must hold a deSEC token")
		}
		return &desec.Provider{Token: s.Key}, nil
	}
}
