package main

import "github.com/voxbind/voxbind/spec"

// SchemaCmd prints the JSON Schema of the spec format, for editors.
type SchemaCmd struct{}

// Run writes the schema to stdout.
func (SchemaCmd) Run(stdio *Stdio) error {
	_, err := stdio.Out.Write(spec.Schema)
	return err
}
