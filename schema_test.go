package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// TestSchemaCommandPrintsTheSchemaFile: what 'voxbind schema' prints is
// spec/voxbind.schema.json byte for byte, the file the spec tests check.
func TestSchemaCommandPrintsTheSchemaFile(t *testing.T) {
	want, err := os.ReadFile("spec/voxbind.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run([]string{"schema"}, &Stdio{In: strings.NewReader(""), Out: &out, Err: io.Discard}); code != 0 {
		t.Fatalf("voxbind schema: exit %d", code)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("voxbind schema printed %d bytes that differ from spec/voxbind.schema.json (%d bytes)", out.Len(), len(want))
	}
}
