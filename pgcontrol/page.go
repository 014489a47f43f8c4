package pgcontrol

import "encoding/binary"

// PageSize is PostgreSQL's block size (BLCKSZ), which walnut supports
// alone: every major from 12 on ships with 8 KiB unless built otherwise.
const PageSize = 8192

// pageLayoutVersion is PG_PAGE_LAYOUT_VERSION, unchanged since 8.3.
const pageLayoutVersion = 4

// sizeOfPageHeader is SizeOfPageHeaderData: pd_lsn (8), pd_checksum,
// pd_flags, pd_lower, pd_upper, pd_special, pd_pagesize_version (2 each),
// pd_prune_xid (4).
const sizeOfPageHeader = 24

// PageLSN returns the LSN in the header of one page of a relation file
// (bufpage.h's PageHeaderData, in the machine's byte order: walnut runs
// little-endian only), the LSN of the last WAL record that changed it.
// ok is false when the bytes do not hold a page header PostgreSQL would
// accept: an all-zero page (a relation extended but not yet written),
// a torn or foreign page, or a file that is not a relation at all. A
// delta backup must store such a page whole, since nothing tells when
// it changed.
func PageLSN(page []byte) (lsn LSN, ok bool) {
	if len(page) != PageSize {
		return 0, false
	}
	le := binary.LittleEndian
	lower, upper, special := le.Uint16(page[12:]), le.Uint16(page[14:]), le.Uint16(page[16:])
	sizeVersion := le.Uint16(page[18:])
	// PageIsVerified's header checks (less the checksum, which a page
	// being written may not match yet; WAL replay fixes such pages).
	if upper == 0 || sizeVersion != PageSize|pageLayoutVersion || lower < sizeOfPageHeader ||
		lower > upper || upper > special || int(special) > PageSize || special%8 != 0 {
		return 0, false
	}
	hi, lo := le.Uint32(page[0:]), le.Uint32(page[4:])
	return LSN(uint64(hi)<<32 | uint64(lo)), true
}

// PageChangedSince says whether a delta backup taken against a backup
// that started at since must store this page: its LSN is at or after
// since (a page changed while that backup ran may or may not be in it),
// or it has no LSN to go by.
func PageChangedSince(page []byte, since LSN) bool {
	lsn, ok := PageLSN(page)
	return !ok || lsn >= since
}
