package pgcontrol

import (
	"encoding/binary"
	"fmt"
)

// xlpPageAddrOff is xlp_pageaddr in XLogPageHeaderData: the WAL position
// of the page's first byte.
const xlpPageAddrOff = 8

// WALPageAddress returns the WAL position a page header says its page
// starts at. The first page of segment N of size S starts at N*S, so a
// file whose header disagrees with its name is not that segment.
func WALPageAddress(head []byte) (LSN, error) {
	if len(head) < xlpPageAddrOff+8 {
		return 0, fmt.Errorf("read WAL page header: %d bytes, need %d", len(head), xlpPageAddrOff+8)
	}
	return LSN(binary.LittleEndian.Uint64(head[xlpPageAddrOff:])), nil
}
