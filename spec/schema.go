package spec

import _ "embed" // for Schema

// Schema is the JSON Schema of the spec format (voxbind.schema.json), for
// editors: 'voxbind schema' prints it. It checks what can be checked one
// file at a time; Load checks everything.
//
//go:embed voxbind.schema.json
var Schema []byte
