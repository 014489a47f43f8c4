package restore

import "github.com/walnut-pg/walnut/tarball"

// tarSize is how many tar bytes the entries of files make, summed over
// their partitions: what a restore reads through its decompressors. Long
// names' extended headers are left out; they are rare and small.
func tarSize(files []tarball.File) int64 {
	const block = 512
	parts := map[int]bool{}
	var n int64
	for _, f := range files {
		for _, c := range f.Chunks {
			parts[c.Partition] = true
			n += block + (c.Size+block-1)&^(block-1)
		}
		if len(f.Chunks) > 0 {
			continue
		}
		parts[f.Partition] = true
		n += block
		if f.Type == tarball.TypeFile {
			n += (f.Size + block - 1) &^ (block - 1)
		}
	}
	return n + int64(len(parts))*2*block
}
