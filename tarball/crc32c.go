package tarball

// CombineCRC32C returns the CRC32C of A followed by B, given crcA of A,
// crcB of B and B's length, without reading either again. The chunks of a
// file are checksummed by different workers as they stream by; this gives
// the whole file's CRC32C (which backup_manifest and files.json record)
// in O(log n) per chunk, where re-reading the file would cost its size
// again. It is zlib's crc32_combine, over the Castagnoli polynomial:
// appending len(B) zero bytes to A is a linear map on the CRC register,
// applied by repeated squaring of the one-zero-bit operator.
func CombineCRC32C(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	var odd, even [32]uint32
	odd[0] = 0x82f63b78 // reflected Castagnoli polynomial: one zero bit
	row := uint32(1)
	for n := 1; n < 32; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four zero bits
	// The first squaring below gives one zero byte.
	for {
		gf2Square(&even, &odd)
		if lenB&1 != 0 {
			crcA = gf2Times(&even, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
		gf2Square(&odd, &even)
		if lenB&1 != 0 {
			crcA = gf2Times(&odd, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for n := range 32 {
		square[n] = gf2Times(mat, mat[n])
	}
}
