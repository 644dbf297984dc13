package action

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Masker replaces registered secrets with *** in everything written through it.
// It buffers until a newline so a secret split across two writes is still caught;
// Flush writes what is left.
type Masker struct {
	mu      sync.Mutex
	out     io.Writer
	secrets []string // longest first, so a secret containing another is masked whole
	buf     []byte
}

// NewMasker wraps w.
func NewMasker(w io.Writer) *Masker { return &Masker{out: w} }

// Add registers secret (and each of its lines) for masking.
func (m *Masker) Add(secret string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range secretParts(secret) {
		if !slices.Contains(m.secrets, s) {
			m.secrets = append(m.secrets, s)
		}
	}
	slices.SortFunc(m.secrets, func(a, b string) int { return len(b) - len(a) })
}

// secretParts is the secret itself, the forms tools print it in when they quote
// or encode it, and, for a multi-line secret, each non-blank line: runners mask
// line by line, so every line must be registered.
func secretParts(secret string) []string {
	var parts []string
	if strings.TrimSpace(secret) != "" {
		parts = append(parts, secret)
		for _, form := range escapedForms(secret) {
			if form != secret && !slices.Contains(parts, form) {
				parts = append(parts, form)
			}
		}
	}
	if strings.ContainsAny(secret, "\r\n") {
		for _, line := range strings.FieldsFunc(secret, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if strings.TrimSpace(line) != "" && line != secret {
				parts = append(parts, line)
			}
		}
	}
	return parts
}

// Mask returns s with every registered secret replaced by ***.
func (m *Masker) Mask(s string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mask(s)
}

func (m *Masker) mask(s string) string {
	for _, secret := range m.secrets {
		s = strings.ReplaceAll(s, secret, "***")
	}
	return s
}

func (m *Masker) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = append(m.buf, p...)
	if i := bytes.LastIndexByte(m.buf, '\n'); i >= 0 {
		// A multi-line secret may span the newline: mask the complete lines
		// together, and keep the tail until its line is complete.
		out := m.mask(string(m.buf[:i+1]))
		m.buf = append(m.buf[:0], m.buf[i+1:]...)
		if _, err := io.WriteString(m.out, out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes any incomplete last line.
func (m *Masker) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.buf) == 0 {
		return nil
	}
	out := m.mask(string(m.buf))
	m.buf = m.buf[:0]
	_, err := io.WriteString(m.out, out)
	return err
}

// escapedForms are the ways a value shows up when a tool quotes or encodes it
// instead of printing it as it is: Go's %q (compose-go's and the engine's errors),
// JSON, a shell's single quotes, URL encoding, base64. Each is the escaped text
// without its surrounding quotes, so it is caught wherever it is embedded.
func escapedForms(secret string) []string {
	goQuoted := strconv.Quote(secret)
	asciiQuoted := strconv.QuoteToASCII(secret)
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(secret)
	jsonHTML, _ := json.Marshal(secret) // with <, > and & escaped, as encoding/json does by default
	return []string{
		goQuoted[1 : len(goQuoted)-1],
		asciiQuoted[1 : len(asciiQuoted)-1],
		strings.TrimSuffix(strings.TrimSpace(js.String()), `"`)[1:],
		string(jsonHTML[1 : len(jsonHTML)-1]),
		strings.ReplaceAll(secret, "'", `'\''`),
		url.QueryEscape(secret),
		url.PathEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.RawURLEncoding.EncodeToString([]byte(secret)),
	}
}

// EncodedForms are the forms of secret that SecretIn looks for besides the
// secret itself: escapedForms, and its base64 (standard and URL alphabets) at
// each of the three alignments it can have inside a longer encoded value, such
// as the base64 of "user:" + secret in a Basic authorization header.
func EncodedForms(secret string) []string {
	forms := escapedForms(secret)
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for shift := 1; shift <= 2; shift++ {
			e := enc.EncodeToString(append(make([]byte, shift), secret...))
			// The characters that hold only the secret's bits: from the first
			// that starts at or after bit 8*shift to the last that ends by the
			// secret's end.
			first := (8*shift + 5) / 6
			last := 8 * (shift + len(secret)) / 6
			if last > first {
				forms = append(forms, e[first:last])
			}
		}
	}
	return forms
}

// SecretIn reports whether value holds secret as it is, quoted or encoded
// (EncodedForms). A secret shorter than 4 bytes is looked for only as it is and
// whole: its encodings are too short to tell from any other text.
func SecretIn(value, secret string) bool {
	if secret == "" {
		return false
	}
	if len(secret) < 4 {
		return value == secret
	}
	if strings.Contains(value, secret) {
		return true
	}
	for _, f := range EncodedForms(secret) {
		if len(f) >= 4 && strings.Contains(value, f) {
			return true
		}
	}
	return false
}
