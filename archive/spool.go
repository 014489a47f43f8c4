package archive

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// SpoolEncoded encodes the file at path once into an unlinked temp file in
// dir (os.TempDir() when empty) and returns it at offset 0 with its size.
//
// Every cloud store must know an object's size (or hold a whole part in
// memory) before it sends it. Handed an EncodedFile of unknown size, a
// store reads it through once to measure it and once more to send it, so
// the file is compressed and encrypted twice. A spooled copy costs one
// write of the encoded bytes instead, and a retried Put rewinds it without
// encoding again. The file is unlinked at once, so a killed process leaves
// nothing behind, and it holds only what the archive will hold (ciphertext
// when encrypting). Closing it frees the space.
func SpoolEncoded(path, dir string, e Encoding) (*os.File, int64, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer in.Close()
	f, err := os.CreateTemp(dir, ".walnut-spool-*")
	if err != nil {
		return nil, 0, fmt.Errorf("spool %s: %w", path, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("spool %s: %w", path, err)
	}
	bw := bufio.NewWriterSize(f, pipeBufSize)
	err = Encode(bw, e, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
	if err == nil {
		err = bw.Flush()
	}
	var size int64
	if err == nil {
		size, err = f.Seek(0, io.SeekCurrent)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("spool %s in %s: %w", path, f.Name(), err)
	}
	return f, size, nil
}
