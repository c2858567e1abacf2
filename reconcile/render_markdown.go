package reconcile

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Markdown size limits: a GitHub comment holds 65,536 characters and
// A GitHub comment holds 65,536 characters; this stays under 65,000. Sections stop at their budget and
// say how many items they left out.
const (
	markdownCap        = 65000
	markdownBlockedEnd = 12000 // blocked changes stop here
	markdownEffectsEnd = 24000 // side effects stop here
	markdownTableEnd   = 52000 // full table rows stop here, then one line each
	markdownLinesEnd   = 64000 // one-line changes stop here, then only a count
)

// RenderMarkdown writes the plan for a pull-request comment: the summary
// first, then blocked changes, side effects and a table of changes. It
// stays under 65,000 characters: past its budget it lists the remaining
// changes one line each, then only their count.
func RenderMarkdown(w io.Writer, p *Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#### voxbind plan for account %d\n\n**%s**\n", p.AccountID, renderSummary(p))
	if n := len(p.Blocked); n > 0 {
		fmt.Fprintf(&b, "\n**%d %s blocked: apply refuses this plan.**\n", n, renderPlural(n, "change is", "changes are"))
	}
	if n := p.FrozenLeftByPrune; n > 0 {
		fmt.Fprintf(&b, "\nprune leaves %d frozen %s alone.\n", n, renderPlural(n, "registration", "registrations"))
	}
	if n := p.Summary.Unmanaged; n > 0 {
		fmt.Fprintf(&b, "\n%d %s left alone.\n", n, renderPlural(n, "registration not in the spec is", "registrations not in the spec are"))
	}

	if len(p.Blocked) > 0 {
		b.WriteString("\n**Blocked**\n\n")
		for i, x := range p.Blocked {
			line := "- " + markdownReg(&x.Registration) + ": " + markdownEscape(renderBlockedReason(x.Reason))
			if x.Source != "" {
				line += " (" + markdownEscape(x.Source) + ")"
			}
			line += "\n"
			if b.Len()+len(line) > markdownBlockedEnd {
				fmt.Fprintf(&b, "- …and %d more blocked\n", len(p.Blocked)-i)
				break
			}
			b.WriteString(line)
		}
	}
	if len(p.SideEffects) > 0 {
		b.WriteString("\n**Side effects** (binding a user takes it from the registration that holds it)\n\n")
		later := renderLaterSteps(p)
		for i, e := range p.SideEffects {
			line := fmt.Sprintf("- %s loses user %s — caused by step %d%s\n",
				markdownReg(&e.Registration), markdownEscape(e.LosesUser.Name), e.CausedByStep, markdownEscape(later[e.Registration.ID]))
			if b.Len()+len(line) > markdownEffectsEnd {
				fmt.Fprintf(&b, "- …and %d more side effects\n", len(p.SideEffects)-i)
				break
			}
			b.WriteString(line)
		}
	}
	if len(p.Changes) > 0 {
		b.WriteString("\n| step | change | registration | before | after | source |\n|---:|---|---|---|---|---|\n")
		i := 0
		for ; i < len(p.Changes); i++ {
			s := &p.Changes[i]
			mark, _ := renderMark(s.Action)
			source := s.Source
			if s.Reason == ReasonPrune {
				source = "prune"
			}
			if len(s.DependsOn) > 0 {
				source += ", after step " + renderSteps(s.DependsOn)
			}
			row := fmt.Sprintf("| %d | %s %s | %s | %s | %s | %s |\n", s.Step, mark, s.Action,
				markdownReg(&s.Registration), markdownEscape(renderTarget(s.Before)),
				markdownEscape(renderTarget(s.After)), markdownEscape(source))
			if b.Len()+len(row) > markdownTableEnd {
				break
			}
			b.WriteString(row)
		}
		if i < len(p.Changes) {
			b.WriteString("\n")
		}
		for ; i < len(p.Changes); i++ {
			s := &p.Changes[i]
			mark, _ := renderMark(s.Action)
			line := "- " + strconv.Itoa(s.Step) + " " + mark + " " + markdownReg(&s.Registration) + "\n"
			if b.Len()+len(line) > markdownLinesEnd {
				fmt.Fprintf(&b, "- …and %d more changes (`voxbind plan -o json` lists them all)\n", len(p.Changes)-i)
				break
			}
			b.WriteString(line)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func markdownReg(r *RegistrationRef) string {
	return markdownEscape(planRegName(r)) + " (" + strconv.FormatInt(r.ID, 10) + ")"
}

// markdownEscape keeps names from being read as markdown or HTML, or from
// breaking a table row.
var markdownReplacer = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "|", `\|`, "~", `\~`, "\n", " ", "\r", " ",
)

func markdownEscape(s string) string { return markdownReplacer.Replace(s) }
