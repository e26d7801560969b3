//go:build !linux

package objstore

import "os"

// writeDirect writes nothing where O_DIRECT is not available: the caller
// writes the usual way.
func writeDirect(*os.File, []byte, pacer) (bool, error) { return false, nil }
