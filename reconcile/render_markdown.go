package reconcile

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/voxbind/voxbind/internal/english"
)

// Markdown size limits: a GitHub comment holds 65,536 characters; a plan
// stays under 65,000. Within a plan's budget, sections stop at these
// shares of it and say how many items they left out.
const (
	markdownCap        = 65000
	markdownBlockedEnd = 12000 // blocked changes stop here
	markdownEffectsEnd = 24000 // side effects stop here
	markdownIgnoredEnd = 32000 // ignored registrations stop here
	markdownTableEnd   = 52000 // full table rows stop here, then one line each
	markdownLinesEnd   = 64000 // one-line changes stop here, then only a count
)

// RenderMarkdown writes the plan for a pull-request comment: the summary
// first, then blocked changes, side effects and a table of changes. It
// stays under 65,000 characters: past its budget it lists the remaining
// changes one line each, then only their count.
func RenderMarkdown(w io.Writer, p *Plan) error {
	var b strings.Builder
	renderMarkdown(&b, p, "account "+strconv.FormatInt(p.AccountID, 10), markdownCap)
	_, err := io.WriteString(w, b.String())
	return err
}

// renderMarkdown appends one account's plan to b, under its title
// (renderTitle of which), in at most about budget characters.
func renderMarkdown(b *strings.Builder, p *Plan, which string, budget int) {
	start := b.Len()
	end := func(share int) int { return start + budget/markdownCap*share + budget%markdownCap*share/markdownCap }
	markdownHeader(b, p, which)
	markdownBlocked(b, p, end(markdownBlockedEnd))
	markdownSideEffects(b, p, end(markdownEffectsEnd))
	markdownIgnored(b, p, end(markdownIgnoredEnd))
	if len(p.Changes) > 0 {
		listed := markdownTable(b, p.Changes, end(markdownTableEnd))
		markdownChangeLines(b, p.Changes[listed:], end(markdownLinesEnd))
	}
}

// markdownHeader writes the title, the summary and the notes a reviewer
// should read before any list; they are never cut.
func markdownHeader(b *strings.Builder, p *Plan, which string) {
	fmt.Fprintf(b, "#### %s\n\n**%s**\n", markdownEscape(renderTitle(p, which)), renderSummary(p))
	if sel := renderSelection(p); sel != "" {
		fmt.Fprintf(b, "\nSelection: %s\n", markdownCode(sel))
	}
	if line := renderOutside(p); line != "" {
		fmt.Fprintf(b, "\n%s\n", line)
	}
	if note := renderAccountNote(p); note != "" {
		fmt.Fprintf(b, "\n**%s**\n", markdownEscape(note))
	}
	if n := len(p.Blocked); n > 0 {
		fmt.Fprintf(b, "\n**%s blocked: %s refuses this plan.**\n", english.Plural(n, "change is", "changes are"), renderRefuser(p))
	}
	if n := p.FrozenLeftByPrune; n > 0 {
		fmt.Fprintf(b, "\nprune leaves %s alone.\n", english.Plural(n, "frozen registration"))
	}
	if n := p.Summary.Unmanaged; n > 0 {
		fmt.Fprintf(b, "\n%s\n", renderUnmanaged(p))
	}
}

// markdownBlocked lists the blocked changes until b reaches end, then
// counts the rest, so that they never crowd out the changes.
func markdownBlocked(b *strings.Builder, p *Plan, end int) {
	if len(p.Blocked) == 0 {
		return
	}
	b.WriteString("\n**Blocked**\n\n")
	for i, x := range p.Blocked {
		line := "- " + markdownReg(&x.Registration) + ": " + markdownEscape(renderBlockedReason(&x))
		if x.Source != "" {
			line += " (" + markdownEscape(x.Source) + ")"
		}
		line += "\n"
		if b.Len()+len(line) > end {
			fmt.Fprintf(b, "- …and %d more blocked\n", len(p.Blocked)-i)
			break
		}
		b.WriteString(line)
	}
}

// markdownSideEffects lists the side effects until b reaches end, then
// counts the rest, so that they never crowd out the changes.
func markdownSideEffects(b *strings.Builder, p *Plan, end int) {
	if len(p.SideEffects) == 0 {
		return
	}
	b.WriteString("\n**Side effects** (binding a user takes it from the registration that holds it)\n\n")
	later := renderLaterSteps(p)
	for i, e := range p.SideEffects {
		line := fmt.Sprintf("- %s loses user %s — caused by step %d%s\n",
			markdownReg(&e.Registration), markdownEscape(renderName(e.LosesUser)), e.CausedByStep, markdownEscape(later[e.Registration.ID]))
		if b.Len()+len(line) > end {
			fmt.Fprintf(b, "- …and %d more side effects\n", len(p.SideEffects)-i)
			break
		}
		b.WriteString(line)
	}
}

// markdownIgnored lists the ignored registrations until b reaches end,
// then counts the rest, so that they never crowd out the changes.
func markdownIgnored(b *strings.Builder, p *Plan, end int) {
	if len(p.Ignored) == 0 {
		return
	}
	b.WriteString("\n**Ignored** (exceptions in the spec: no step until they end)\n\n")
	for i, x := range p.Ignored {
		line := "- " + markdownReg(&x.Registration) + " " + markdownEscape(renderIgnored(&x)) + "\n"
		if b.Len()+len(line) > end {
			fmt.Fprintf(b, "- …and %d more ignored\n", len(p.Ignored)-i)
			break
		}
		b.WriteString(line)
	}
}

// markdownTable writes the changes as full table rows while they fit
// before end and returns how many it wrote; the rest go one line each.
func markdownTable(b *strings.Builder, changes []Step, end int) int {
	b.WriteString("\n| step | change | registration | before | after | source |\n|---:|---|---|---|---|---|\n")
	for i := range changes {
		s := &changes[i]
		mark, _ := renderMark(s.Action)
		source := s.Source
		if s.Reason == ReasonPrune {
			source = "prune"
		}
		if notes := renderStepNotes(s); notes != "" {
			source += ", " + notes
		}
		row := fmt.Sprintf("| %d | %s %s | %s | %s | %s | %s |\n", s.Step, mark, s.Action,
			markdownReg(&s.Registration), markdownEscape(renderTarget(s.Before)),
			markdownEscape(renderTarget(s.After)), markdownEscape(source))
		if b.Len()+len(row) > end {
			return i
		}
		b.WriteString(row)
	}
	return len(changes)
}

// markdownChangeLines writes the changes the table had no room for, one
// short line each until b reaches end, then only their count.
func markdownChangeLines(b *strings.Builder, changes []Step, end int) {
	if len(changes) == 0 {
		return
	}
	b.WriteString("\n")
	for i := range changes {
		s := &changes[i]
		mark, _ := renderMark(s.Action)
		line := "- " + strconv.Itoa(s.Step) + " " + mark + " " + markdownReg(&s.Registration) + "\n"
		if b.Len()+len(line) > end {
			fmt.Fprintf(b, "- …and %d more changes (`-o json` lists them all)\n", len(changes)-i)
			break
		}
		b.WriteString(line)
	}
}

// markdownCode shows s as typed, in a code span (where nothing is markup
// and no @ mentions anyone); text with a backtick is escaped instead.
func markdownCode(s string) string {
	s = Printable(s)
	if strings.ContainsAny(s, "`\n") {
		return markdownEscape(s)
	}
	return "`" + s + "`"
}

func markdownReg(r *RegistrationRef) string {
	return markdownEscape(regName(r)) + " (" + strconv.FormatInt(r.ID, 10) + ")"
}

// markdownReplacer escapes what markdown or HTML would read in a name
// (markdownEscape).
var markdownReplacer = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "|", `\|`, "~", `\~`,
)

// markdownEscape keeps names from being read as markdown or HTML, from
// breaking a table row, from acting on a terminal (see Printable), and
// from notifying anyone: an @ that GitHub would read as a mention (at the
// start, or after a character that is not a letter, digit or _) gets a
// zero-width space after it, so "@org/team" shows as typed but pings no
// one. "alice@pbx.example.com" is no mention and is left alone.
func markdownEscape(s string) string {
	s = markdownReplacer.Replace(Printable(s))
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] == '@' && (i == 0 || !markdownWordByte(s[i-1])) {
			b.WriteString("\u200b")
		}
	}
	return b.String()
}

func markdownWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
