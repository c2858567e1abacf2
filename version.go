package main

import (
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/alecthomas/kong"

	"github.com/voxbind/voxbind/reconcile"
)

// The version, its commit and the commit's date. A release build sets them
// with -ldflags "-X main.version=v1.2.3 -X main.commit=... -X main.date=...";
// whatever is not set comes from the build information Go records in the
// binary (see buildStamp), so that a 'go install ...@v1.2.3' or a build in
// a git checkout says what it is too. Read version after init: it is what
// the User-Agent, the version command and error reports show.
var (
	version = "dev"
	commit  = ""
	date    = ""
	// goVersion is the Go release that built voxbind.
	goVersion = runtime.Version()
)

func init() {
	bi, _ := debug.ReadBuildInfo()
	s := buildStamp(bi, stamp{Version: version, Commit: commit, Date: date, Go: goVersion})
	version, commit, date, goVersion = s.Version, s.Commit, s.Date, s.Go
}

// stamp is what 'voxbind version -o json' prints. An unknown commit or
// date is "".
type stamp struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
}

// pseudoVersion matches a Go module pseudo-version (what 'go install
// ...@COMMIT' and a build of an untagged commit get) and captures the
// commit's UTC time and the commit hash's first 12 digits.
var pseudoVersion = regexp.MustCompile(`^v\d+\.(?:0\.0-|\d+\.\d+-(?:[^+]*\.)?0\.)(\d{14})-([0-9a-f]{12})(?:\+[0-9A-Za-z.-]+)?$`)

// buildStamp fills what the linker flags left unset from the build
// information: the module version ('go install ...@v1.2.3', or what Go
// derives from the git tags when building in a checkout with -buildvcs),
// the commit and its time from the VCS settings, or else from a
// pseudo-version, and the Go version that built the binary. "(devel)"
// (a build without version information) leaves the version "dev". A
// date set by the linker flags is shown in UTC, as the others are (git
// log --format=%cI gives the committer's offset), or as given when it is
// not RFC 3339.
func buildStamp(bi *debug.BuildInfo, s stamp) stamp {
	if t, err := time.Parse(time.RFC3339, s.Date); err == nil {
		s.Date = t.UTC().Format(time.RFC3339)
	}
	if bi == nil {
		return s
	}
	if bi.GoVersion != "" {
		s.Go = bi.GoVersion
	}
	if s.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		s.Version = bi.Main.Version
	}
	var revision, vcsTime string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			revision = kv.Value
		case "vcs.time":
			vcsTime = kv.Value
		}
	}
	if m := pseudoVersion.FindStringSubmatch(bi.Main.Version); m != nil {
		if revision == "" {
			revision = m[2]
		}
		if t, err := time.Parse("20060102150405", m[1]); err == nil && vcsTime == "" {
			vcsTime = t.UTC().Format(time.RFC3339)
		}
	}
	if s.Commit == "" {
		s.Commit = revision
	}
	if s.Date == "" {
		s.Date = vcsTime
	}
	return s
}

// VersionCmd prints the version, the commit it was built from and that
// commit's date, and the Go version.
type VersionCmd struct {
	Output string `short:"o" enum:"text,json" default:"text" placeholder:"FORMAT" help:"Output format: text or json."`
}

// Help is the examples under version's --help.
func (VersionCmd) Help() string {
	return `Examples:

    voxbind version
    voxbind version -o json   # for a bug report or an inventory`
}

// Run prints the version.
func (c *VersionCmd) Run(stdio *Stdio) error {
	return writeVersion(stdio.Out, c.Output)
}

func writeVersion(w io.Writer, format string) error {
	s := stamp{Version: version, Commit: commit, Date: date, Go: goVersion}
	if format == "json" {
		return reconcile.NewJSONEncoder(w).Encode(s)
	}
	unknown := func(v string) string {
		if v == "" {
			return "unknown"
		}
		return v
	}
	_, err := fmt.Fprintf(w, "voxbind %s\n  commit  %s\n  date    %s\n  go      %s %s/%s\n",
		s.Version, unknown(s.Commit), unknown(s.Date), s.Go, runtime.GOOS, runtime.GOARCH)
	return err
}

// versionFlag is --version: it prints what 'voxbind version' prints and
// ends voxbind with status 0 before the command runs or its flags' values
// are checked (a flag kong does not know, or a value it cannot parse, is
// still a usage error).
type versionFlag bool

// BeforeReset runs while the command line is parsed, before any
// validation, as kong's own --help does.
func (versionFlag) BeforeReset(app *kong.Kong, stdio *Stdio) error {
	if err := writeVersion(stdio.Out, "text"); err != nil {
		return err
	}
	app.Exit(0)
	return nil
}
