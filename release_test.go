package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestReleaseConfig keeps .goreleaser.yaml to what the docs promise:
// archives for linux, darwin and windows on amd64 and arm64, a
// checksums.txt, -trimpath and an empty build id, and the version, commit
// and date stamped into the variables 'voxbind version' reads
// (TestVersionFromBuildInfo shows that -X on them works).
func TestReleaseConfig(t *testing.T) {
	data, err := os.ReadFile(".goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Builds []struct {
			Goos    []string `yaml:"goos"`
			Goarch  []string `yaml:"goarch"`
			Flags   []string `yaml:"flags"`
			Ldflags []string `yaml:"ldflags"`
			Env     []string `yaml:"env"`
		} `yaml:"builds"`
		Archives []struct {
			NameTemplate string `yaml:"name_template"`
		} `yaml:"archives"`
		Checksum struct {
			NameTemplate string `yaml:"name_template"`
			Algorithm    string `yaml:"algorithm"`
		} `yaml:"checksum"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Builds) != 1 || len(cfg.Archives) != 1 {
		t.Fatalf("want one build and one archive, got %d and %d", len(cfg.Builds), len(cfg.Archives))
	}
	b := cfg.Builds[0]
	for _, want := range []string{"linux", "darwin", "windows"} {
		if !slices.Contains(b.Goos, want) {
			t.Errorf("goos lacks %s", want)
		}
	}
	for _, want := range []string{"amd64", "arm64"} {
		if !slices.Contains(b.Goarch, want) {
			t.Errorf("goarch lacks %s", want)
		}
	}
	if !slices.Contains(b.Flags, "-trimpath") {
		t.Errorf("flags lack -trimpath")
	}
	ldflags := " " + strings.Join(b.Ldflags, " ") + " "
	for _, want := range []string{" -buildid= ", " -X main.version=v{{ .Version }} ", " -X main.commit={{ .FullCommit }} ", " -X main.date={{ .CommitDate }} "} {
		if !strings.Contains(ldflags, want) {
			t.Errorf("ldflags lack %q: %s", strings.TrimSpace(want), ldflags)
		}
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("env lacks CGO_ENABLED=0: a cross-compiled release must not need a C toolchain")
	}
	// The CI examples download voxbind_<version without v>_<os>_<arch>.tar.gz.
	if got, want := cfg.Archives[0].NameTemplate, "{{ .ProjectName }}_{{ .Version }}_{{ .Os }}_{{ .Arch }}"; got != want {
		t.Errorf("archive name_template = %q, want %q (examples/ci build this name)", got, want)
	}
	if cfg.Checksum.NameTemplate != "checksums.txt" || cfg.Checksum.Algorithm != "sha256" {
		t.Errorf("checksum = %+v, want checksums.txt with sha256 (examples/ci check it with sha256sum)", cfg.Checksum)
	}
}

// TestGoreleaserPinnedOnce: the release workflow and scripts/release-snapshot
// run the same goreleaser version.
func TestGoreleaserPinnedOnce(t *testing.T) {
	pin := regexp.MustCompile(`github\.com/goreleaser/goreleaser/v2@(v[0-9.]+)`)
	versions := map[string]string{}
	for _, file := range []string{"scripts/release-snapshot", ".github/workflows/release.yml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range pin.FindAllStringSubmatch(string(data), -1) {
			versions[m[1]] = file
		}
		if !pin.Match(data) {
			t.Errorf("%s runs no pinned goreleaser", file)
		}
	}
	if len(versions) != 1 {
		t.Errorf("goreleaser versions differ: %v", versions)
	}
}
