package mem_test

import (
	"testing"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return mem.New() })
}

func TestFailedLargePut(t *testing.T) {
	storagetest.FailedLargePut(t, mem.New(), 3<<20+5)
}
