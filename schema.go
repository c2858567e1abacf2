package main

import "github.com/voxbind/voxbind/spec"

// SchemaCmd prints the JSON Schema of the spec format, for editors.
type SchemaCmd struct{}

// Help is the example under schema's --help.
func (SchemaCmd) Help() string {
	return `Example:

    voxbind schema > voxbind.schema.json   # then: voxbind export --schema ./voxbind.schema.json`
}

// Run writes the schema to stdout.
func (SchemaCmd) Run(stdio *Stdio) error {
	_, err := stdio.Out.Write(spec.Schema)
	return err
}
