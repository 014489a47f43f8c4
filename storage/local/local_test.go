package local_test

import (
	"testing"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/local"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := local.New(t.TempDir() + "/archive")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
