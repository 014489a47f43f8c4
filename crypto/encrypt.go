package crypto

import (
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// writeConfig makes messages Debian's gpg 2.2 reads: with no AEADConfig
// the data is SEIPDv1 with an MDC (gpg 2.2 knows no SEIPDv2), AES-256, and
// no OpenPGP compression, because walnut compresses before it encrypts.
func writeConfig() *packet.Config {
	return &packet.Config{
		DefaultCipher:          packet.CipherAES256,
		DefaultHash:            defaultHash,
		DefaultCompressionAlgo: packet.CompressionNone,
	}
}

// Encrypt returns a writer that encrypts what is written to it into w, as
// one OpenPGP message to every recipient. Close finishes the message (the
// MDC) and never closes w.
func (r *Recipients) Encrypt(w io.Writer) (io.WriteCloser, error) {
	pw, err := openpgp.Encrypt(w, r.entities, nil, &openpgp.FileHints{IsBinary: true}, writeConfig())
	if err != nil {
		return nil, err
	}
	return chunkedWriter{pw}, nil
}

// maxWrite bounds what go-crypto buffers: its partial-length packet writer
// holds a whole Write (an io.Copy from a bytes.Reader is one Write of
// everything) until the next one.
const maxWrite = 256 << 10

type chunkedWriter struct{ io.WriteCloser }

func (c chunkedWriter) Write(p []byte) (n int, err error) {
	for len(p) > 0 {
		m, err := c.WriteCloser.Write(p[:min(len(p), maxWrite)])
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}
