package crypto

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

var errBrokenPipe = syscall.EPIPE

// GPG decrypts by running the user's gpg, for objects WAL-E encrypted to a
// key in the user's keyring (`gpg -e -r KEYID`): the private key may live
// only there, behind gpg-agent, a passphrase prompt or a smartcard, which
// no key file walnut reads can stand in for. The caller supplies the
// program and its whole environment (GNUPGHOME, GPG_AGENT_INFO, ...): this
// package reads no environment of its own.
type GPG struct {
	Program string   // absolute path of gpg
	Env     []string // the environment gpg runs with
}

// WithGPG returns a keyring that falls back to g for messages none of its
// keys opens. k may be nil (no walnut key configured).
func (k *Keyring) WithGPG(g *GPG) *Keyring {
	if k == nil {
		return &Keyring{gpg: g}
	}
	k.gpg = g
	return k
}

// GPG is the fallback set by WithGPG, or nil.
func (k *Keyring) GPG() *GPG {
	if k == nil {
		return nil
	}
	return k.gpg
}

// HasKeys reports whether the keyring holds any key of its own.
func (k *Keyring) HasKeys() bool { return k != nil && len(k.entities) > 0 }

// HasPrivateKeyFor reports whether one of the keyring's own private keys
// has one of the key IDs (16 hex digits) a message is encrypted to.
func (k *Keyring) HasPrivateKeyFor(ids []string) bool {
	if !k.HasKeys() {
		return false
	}
	have := k.privateKeyIDs()
	for _, id := range ids {
		for _, h := range have {
			if id != "" && id == h {
				return true
			}
		}
	}
	return false
}

// IsOpenPGPMessage reports whether b begins with a public-key or
// symmetric-key encrypted session key packet, as every encrypted OpenPGP
// message does (gpg -e writes one PKESK per recipient first).
func IsOpenPGPMessage(b []byte) bool {
	tag, _, _, ok := packetHeader(b)
	return ok && (tag == 1 || tag == 3)
}

// RecipientKeyIDs lists the key IDs of the PKESK packets at the start of
// an OpenPGP message (as many as b holds), "" for a hidden recipient.
func RecipientKeyIDs(b []byte) []string {
	var ids []string
	for len(b) > 0 {
		tag, hdr, body, ok := packetHeader(b)
		if !ok || tag != 1 {
			break
		}
		if body < 10 || hdr+body > len(b) {
			break
		}
		p := b[hdr : hdr+body]
		if p[0] == 3 { // v3 PKESK: version, 8-byte key ID, algorithm, ...
			if id := binary.BigEndian.Uint64(p[1:9]); id != 0 {
				ids = append(ids, keyID(id))
			} else {
				ids = append(ids, "")
			}
		}
		b = b[hdr+body:]
	}
	return ids
}

// packetHeader parses an OpenPGP packet header (RFC 4880 4.2): the tag,
// the header's length and the body's (definite lengths only: session key
// packets always have one).
func packetHeader(b []byte) (tag, hdr, body int, ok bool) {
	if len(b) < 2 || b[0]&0x80 == 0 {
		return 0, 0, 0, false
	}
	if b[0]&0x40 == 0 { // old format
		tag = int(b[0]>>2) & 0x0f
		switch b[0] & 3 {
		case 0:
			return tag, 2, int(b[1]), true
		case 1:
			if len(b) < 3 {
				return 0, 0, 0, false
			}
			return tag, 3, int(binary.BigEndian.Uint16(b[1:3])), true
		case 2:
			if len(b) < 5 {
				return 0, 0, 0, false
			}
			return tag, 5, int(binary.BigEndian.Uint32(b[1:5])), true
		}
		return tag, 1, 0, false
	}
	tag = int(b[0] & 0x3f)
	switch l := b[1]; {
	case l < 192:
		return tag, 2, int(l), true
	case l < 224:
		if len(b) < 3 {
			return 0, 0, 0, false
		}
		return tag, 3, (int(l)-192)<<8 + int(b[2]) + 192, true
	case l == 255:
		if len(b) < 6 {
			return 0, 0, 0, false
		}
		return tag, 6, int(binary.BigEndian.Uint32(b[2:6])), true
	}
	return tag, 2, 0, false // partial length: not a session key packet
}

// GPGError is a gpg run that failed: the key IDs the message names and
// gpg's own last line on stderr.
type GPGError struct {
	Object string
	KeyIDs []string
	Last   string
	Err    error
}

func (e *GPGError) Error() string {
	ids := "an unnamed key"
	if len(e.KeyIDs) > 0 {
		ids = "key ID " + strings.Join(e.KeyIDs, ", ")
	}
	last := e.Last
	if last == "" {
		last = e.Err.Error()
	}
	return fmt.Sprintf("gpg could not decrypt %s (encrypted to %s): %s", e.Object, ids, last)
}

func (e *GPGError) Unwrap() error { return e.Err }

// Decrypt runs `gpg --batch --decrypt` with r as its stdin and returns its
// stdout. The plaintext never touches the disk. gpg checks the message's
// integrity itself and exits non-zero when it fails, which Read reports
// at the end of the stream, so as with Keyring.Decrypt a caller must read
// to io.EOF before trusting what it read. object names the message in
// errors; keyIDs are the recipients the caller found in its header.
func (g *GPG) Decrypt(ctx context.Context, r io.Reader, object string, keyIDs []string) (io.ReadCloser, error) {
	cmd := exec.CommandContext(ctx, g.Program, "--batch", "--quiet", "--no-tty", "--decrypt")
	cmd.Env = g.Env
	stderr := &lastLines{}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, &GPGError{Object: object, KeyIDs: keyIDs, Err: fmt.Errorf("run %s: %w", g.Program, err)}
	}
	p := &gpgProcess{cmd: cmd, out: out, stderr: stderr, object: object, ids: keyIDs, fed: make(chan error, 1)}
	go func() {
		_, err := io.Copy(in, r)
		cerr := in.Close()
		if err == nil {
			err = cerr
		}
		if errors.Is(err, errBrokenPipe) {
			err = nil // gpg stopped reading: its exit status tells why
		}
		p.fed <- err
	}()
	return p, nil
}

type gpgProcess struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr *lastLines
	object string
	ids    []string
	fed    chan error
	once   sync.Once
	err    error
	ended  bool
	endErr error
}

// Read ends with gpg's exit status. Wait closes the pipe, so once the end
// was seen, later reads answer from it without touching the pipe.
func (p *gpgProcess) Read(b []byte) (int, error) {
	if p.ended {
		return 0, p.endErr
	}
	n, err := p.out.Read(b)
	if err == io.EOF {
		p.ended, p.endErr = true, io.EOF
		if werr := p.wait(); werr != nil {
			p.endErr = werr
		}
		return n, p.endErr
	}
	return n, err
}

// wait collects gpg's exit; a failure to feed it (the store broke
// mid-object) is the story before whatever gpg said about a cut message.
func (p *gpgProcess) wait() error {
	p.once.Do(func() {
		feedErr := <-p.fed
		err := p.cmd.Wait()
		switch {
		case feedErr != nil:
			p.err = feedErr
		case err != nil:
			p.err = &GPGError{Object: p.object, KeyIDs: p.ids, Last: p.stderr.last(), Err: err}
		}
	})
	return p.err
}

// Close stops gpg if the plaintext was not read to its end.
func (p *gpgProcess) Close() error {
	p.out.Close()
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
	}
	p.wait()
	return nil
}

// lastLines keeps the end of gpg's stderr: its last line says why it
// failed ("No secret key", "Bad passphrase", "decryption failed").
type lastLines struct {
	mu  sync.Mutex
	buf []byte
}

func (l *lastLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	if len(l.buf) > 4096 {
		l.buf = l.buf[len(l.buf)-4096:]
	}
	return len(b), nil
}

func (l *lastLines) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := bytes.Split(bytes.TrimSpace(l.buf), []byte("\n"))
	return strings.TrimSpace(string(lines[len(lines)-1]))
}
