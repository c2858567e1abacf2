package spec

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Fleet is the desired state of every account a run's spec files name:
// each account's spec, by account id. Files that name no account_id, or
// one account_id between them, are a fleet of one (its AccountID is 0 when
// no file names one). Files that name several account_ids are a fleet of
// several: every YAML file must then name its account_id, and a CSV file
// (which cannot) belongs to the account that the YAML files in its
// directory name; each account's files are checked together (prune must
// agree, a registration or a user is listed once), apart from the other
// accounts' files.
type Fleet struct {
	Specs []*Spec  // one per account, by account id
	Files []string // every file read, in load order
}

// Several reports whether the files name more than one account: a fleet
// run, whose plans are shown account by account.
func (f *Fleet) Several() bool { return len(f.Specs) > 1 }

// Spec returns the spec of account id, or nil when no file names it.
func (f *Fleet) Spec(id int64) *Spec {
	for _, s := range f.Specs {
		if s.AccountID == id {
			return s
		}
	}
	return nil
}

// AccountIDs lists the accounts of the fleet, in order.
func (f *Fleet) AccountIDs() []int64 {
	ids := make([]int64, len(f.Specs))
	for i, s := range f.Specs {
		ids[i] = s.AccountID
	}
	return ids
}

// accountList is "2 accounts (1000002, 1000003)", with at most a few ids.
func (f *Fleet) accountList() string {
	return AccountList(f.AccountIDs())
}

// AccountList names a few account ids for a message: "2 accounts
// (1000002, 1000003)", "40 accounts (1000002, 1000003, 1000004, 1000005,
// 1000006, …)".
func AccountList(ids []int64) string {
	const show = 5
	parts := make([]string, 0, show+1)
	for i, id := range ids {
		if i == show {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, strconv.FormatInt(id, 10))
	}
	noun := "accounts"
	if len(ids) == 1 {
		noun = "account"
	}
	return strconv.Itoa(len(ids)) + " " + noun + " (" + strings.Join(parts, ", ") + ")"
}

// fleet groups the files read by account and checks each account's files
// together: prune agrees, and no registration or user is listed twice.
func (l *loader) fleet() (*Fleet, error) {
	var ids []int64
	for _, f := range l.files {
		if f.read && f.accountID != 0 && !slices.Contains(ids, f.accountID) {
			ids = append(ids, f.accountID)
		}
	}
	slices.Sort(ids)
	fleet := &Fleet{}
	for _, f := range l.files {
		fleet.Files = append(fleet.Files, f.name)
	}
	if len(ids) <= 1 {
		var id int64
		if len(ids) == 1 {
			id = ids[0]
		}
		all := make([]int, len(l.files))
		for i := range all {
			all[i] = i
		}
		fleet.Specs = []*Spec{l.account(id, all, false)}
	} else {
		byAccount := make(map[int64][]int, len(ids))
		beside := l.accountsByDir()
		for i, f := range l.files {
			switch {
			case !f.read:
			case f.csv:
				if id, ok := l.csvAccount(&f, beside, ids); ok {
					byAccount[id] = append(byAccount[id], i)
				}
			case f.accountID == 0 && f.accountKey:
				// account_id is written but is not an id: that error,
				// reported where it stands, is the one to fix.
			case f.accountID == 0:
				l.report(f.top, CodeFleetAccount, "no account_id: these spec files are for "+AccountList(ids)+", so every file says which account it is for",
					"add \"account_id: ID\" at the top of this file")
			default:
				byAccount[f.accountID] = append(byAccount[f.accountID], i)
			}
		}
		for _, id := range ids {
			fleet.Specs = append(fleet.Specs, l.account(id, byAccount[id], true))
		}
	}
	if err := l.errs.Err(); err != nil {
		return nil, err
	}
	return fleet, nil
}

// accountsByDir lists, for each directory, the accounts that the YAML
// files read from it name.
func (l *loader) accountsByDir() map[string][]int64 {
	out := map[string][]int64{}
	for _, f := range l.files {
		if f.read && f.accountID != 0 {
			dir := fileDir(f.name)
			if !slices.Contains(out[dir], f.accountID) {
				out[dir] = append(out[dir], f.accountID)
			}
		}
	}
	return out
}

// fileDir is the directory a file is in, made absolute where it can be,
// so that "a/x.csv" and "./a/y.yaml" are beside each other.
func fileDir(name string) string {
	dir := filepath.Dir(name)
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// csvAccount is the account a CSV file of a fleet run belongs to: the one
// account that the YAML files beside it (in its directory) name. It
// reports a CSV file that has none, or several, and returns false.
func (l *loader) csvAccount(f *loadedFile, beside map[string][]int64, ids []int64) (int64, bool) {
	switch accounts := beside[fileDir(f.name)]; len(accounts) {
	case 1:
		return accounts[0], true
	case 0:
		l.report(f.top, CodeFleetAccount, "a CSV file names no account, and these spec files are for "+AccountList(ids)+
			": a CSV file belongs to the account of the YAML files beside it, and none is in its directory", "put it in a directory with a YAML file that names its account_id")
	default:
		slices.Sort(accounts)
		l.report(f.top, CodeFleetAccount, "a CSV file names no account, and the YAML files beside it name "+AccountList(accounts)+
			", so it belongs to none of them", "give each account a directory of its own, with its YAML and CSV files")
	}
	return 0, false
}

// account builds the spec of account id (0: none named) from the files at
// indexes files, in load order, checking them together. inFleet names
// the account in messages.
func (l *loader) account(id int64, files []int, inFleet bool) *Spec {
	s := &Spec{Version: 1, AccountID: id}
	entries := 0
	for _, i := range files {
		f := &l.files[i]
		entries += f.end - f.first
		s.Files = append(s.Files, f.name)
		if f.accountID != 0 && s.AccountIDPos.Line == 0 {
			s.AccountIDPos = f.accountPos
		}
		if f.prunePos.Line == 0 {
			continue
		}
		if s.PrunePos.Line == 0 {
			s.Prune, s.PrunePos = f.prune, f.prunePos
		} else if s.Prune != f.prune {
			every := "every file"
			if inFleet {
				every = "every file of account " + strconv.FormatInt(id, 10)
			}
			l.report(f.prunePos, CodeFilesDisagree, "prune: "+strconv.FormatBool(f.prune)+" disagrees with prune: "+strconv.FormatBool(s.Prune)+
				" at "+s.PrunePos.String(), "set the same prune in "+every+", or in one file only")
		}
	}
	// One account (the usual run) keeps the entries where they were read.
	if len(files) == len(l.files) {
		s.Bindings, s.Ignores = l.bindings, l.ignores
	} else {
		s.Bindings = make([]Binding, 0, entries)
		for _, i := range files {
			f := &l.files[i]
			s.Bindings = append(s.Bindings, l.bindings[f.first:f.end]...)
			s.Ignores = append(s.Ignores, l.ignores[f.ignoreFirst:f.ignoreEnd]...)
		}
	}
	d := newDuplicates(l, entries)
	for _, i := range files {
		f := &l.files[i]
		for j := f.first; j < f.end; j++ {
			switch alias := l.flags[j]&entryAlias != 0; {
			case l.flags[j]&entryChecked != 0:
				d.check(&l.bindings[j], alias)
			case l.flags[j]&entryRegistration != 0:
				d.checkRegistration(&l.bindings[j], alias)
			}
		}
	}
	return s
}
