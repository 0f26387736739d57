// Package dockerfile reads the few Dockerfile instructions this project's
// Dockerfile uses, so that the tests in test/deploy and the docker-free image
// builder in internal/image share one reading of it: the Dockerfile stays the
// one truth for how the zmqauth binary is built and run.
package dockerfile

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Dockerfile is the part of a Dockerfile this project relies on.
type Dockerfile struct {
	// Stages are the FROM sections, in order.
	Stages []*Stage
}

// Stage is one FROM ... section.
type Stage struct {
	// From is the base image, Name the stage's AS name (empty if none).
	From, Name string
	// Workdir is the stage's final WORKDIR, "/" by default.
	Workdir string
	// Args maps each ARG NAME[=default] to its default.
	Args map[string]string
	// Runs are the RUN lines, continuations joined.
	Runs []string
	// Copies are the COPY instructions.
	Copies []Copy
	// User is the last USER, empty if none.
	User string
	// Entrypoint is the exec-form ENTRYPOINT.
	Entrypoint []string
}

// Copy is one COPY instruction.
type Copy struct {
	// From is the --from stage, empty for the build context.
	From string
	// Src are the sources, Dest the destination.
	Src  []string
	Dest string
	// Platform is the --platform value, if any.
	Platform string
}

// Parse reads the instructions this project's Dockerfile uses and refuses
// any other, so a new instruction is noticed by the tests and the image
// builder instead of being silently ignored.
func Parse(file string) (*Dockerfile, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("dockerfile: %w", err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dockerfile: reading %s: %w", file, err)
	}

	d := &Dockerfile{}
	var st *Stage
	for _, line := range lines {
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		if strings.ToUpper(instr) != "FROM" && st == nil {
			return nil, fmt.Errorf("dockerfile: %s before the first FROM", instr)
		}
		switch strings.ToUpper(instr) {
		case "FROM":
			words := strings.Fields(rest)
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				words = words[1:]
			}
			st = &Stage{Args: map[string]string{}, Workdir: "/"}
			switch {
			case len(words) == 1:
				st.From = words[0]
			case len(words) == 3 && strings.EqualFold(words[1], "AS"):
				st.From, st.Name = words[0], words[2]
			default:
				return nil, fmt.Errorf("dockerfile: FROM %s: want IMAGE [AS NAME]", rest)
			}
			d.Stages = append(d.Stages, st)
		case "ARG":
			name, def, _ := strings.Cut(rest, "=")
			st.Args[name] = def
		case "WORKDIR":
			st.Workdir = path.Join(st.Workdir, rest)
		case "RUN":
			st.Runs = append(st.Runs, rest)
		case "COPY":
			words := strings.Fields(rest)
			var c Copy
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				k, v, _ := strings.Cut(strings.TrimPrefix(words[0], "--"), "=")
				switch k {
				case "from":
					c.From = v
				case "platform":
					c.Platform = v
				default:
					return nil, fmt.Errorf("dockerfile: COPY --%s is not understood", k)
				}
				words = words[1:]
			}
			if len(words) < 2 {
				return nil, fmt.Errorf("dockerfile: COPY %s: want SRC... DEST", rest)
			}
			c.Src, c.Dest = words[:len(words)-1], words[len(words)-1]
			st.Copies = append(st.Copies, c)
		case "USER":
			st.User = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &st.Entrypoint); err != nil {
				return nil, fmt.Errorf("dockerfile: ENTRYPOINT must be the exec (JSON) form: %w", err)
			}
		default:
			return nil, fmt.Errorf("dockerfile: instruction %s is not understood; teach internal/dockerfile about it", instr)
		}
	}
	if len(d.Stages) == 0 {
		return nil, errors.New("dockerfile: no FROM")
	}
	return d, nil
}

// Final returns the last stage, the one the image is made of.
func (d *Dockerfile) Final() *Stage { return d.Stages[len(d.Stages)-1] }

// Stage returns the stage named name, or nil.
func (d *Dockerfile) Stage(name string) *Stage {
	for _, s := range d.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// GoBuild is the `go build` line of the build stage that makes the final
// stage's ENTRYPOINT, as it runs for one target platform.
type GoBuild struct {
	// Env holds the line's leading NAME=value assignments, expanded.
	Env map[string]string
	// Args are the words after `go`, starting with "build", expanded; the
	// -o value is the build stage's absolute path (Out).
	Args []string
	// Out is the absolute path -o names in the build stage.
	Out string
	// Dest is where the final stage's COPY puts Out (the ENTRYPOINT).
	Dest string
}

var (
	goBuildRE = regexp.MustCompile(`(^|\s)go build\s`)
	assignRE  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)
)

// GoBuild finds the RUN line that builds the final stage's ENTRYPOINT and
// expands it for targetOS and targetArch (what BuildKit sets as TARGETOS and
// TARGETARCH). It refuses a Dockerfile whose binary does not come from a
// build stage that copies the whole context into its WORKDIR, or whose build
// line is more than `NAME=value... go build ...`.
func (d *Dockerfile) GoBuild(targetOS, targetArch string) (*GoBuild, error) {
	final := d.Final()
	if len(final.Entrypoint) == 0 {
		return nil, errors.New("dockerfile: the final stage has no ENTRYPOINT")
	}
	var from *Copy
	for i, c := range final.Copies {
		if c.Dest == final.Entrypoint[0] {
			from = &final.Copies[i]
		}
	}
	if from == nil || from.From == "" || len(from.Src) != 1 {
		return nil, errors.New("dockerfile: no COPY --from=STAGE puts the ENTRYPOINT in the final image")
	}
	st := d.Stage(from.From)
	if st == nil {
		return nil, fmt.Errorf("dockerfile: COPY --from names no stage: %s", from.From)
	}
	if !slices.ContainsFunc(st.Copies, func(c Copy) bool {
		return c.From == "" && slices.Equal(c.Src, []string{"."}) && (c.Dest == "." || c.Dest == st.Workdir)
	}) {
		return nil, errors.New("dockerfile: the build stage does not COPY . into its WORKDIR; the build runs from the repository root")
	}
	var run string
	for _, r := range st.Runs {
		if goBuildRE.MatchString(r) {
			run = r
		}
	}
	if run == "" {
		return nil, fmt.Errorf("dockerfile: no RUN ... go build in stage %s", st.Name)
	}
	vars := map[string]string{}
	for k, v := range st.Args {
		vars[k] = v
	}
	vars["TARGETOS"], vars["TARGETARCH"] = targetOS, targetArch
	words, err := ShellWords(run)
	if err != nil {
		return nil, err
	}
	g := &GoBuild{Env: map[string]string{}, Dest: from.Dest}
	i := 0
	for ; i < len(words) && assignRE.MatchString(words[i]); i++ {
		k, v, _ := strings.Cut(words[i], "=")
		g.Env[k] = Expand(v, vars)
	}
	if len(words) < i+2 || words[i] != "go" || words[i+1] != "build" {
		return nil, fmt.Errorf("dockerfile: the build line must be: VAR=value... go build ...: %s", run)
	}
	g.Args = []string{"build"}
	for j := i + 2; j < len(words); j++ {
		w := Expand(words[j], vars)
		if w == "-o" && j+1 < len(words) {
			out := Expand(words[j+1], vars)
			if !path.IsAbs(out) {
				out = path.Join(st.Workdir, out)
			}
			g.Out = out
			g.Args = append(g.Args, "-o", out)
			j++
			continue
		}
		g.Args = append(g.Args, w)
	}
	if g.Out != from.Src[0] {
		return nil, fmt.Errorf("dockerfile: go build -o %s but the final stage copies %s", g.Out, from.Src[0])
	}
	return g, nil
}

// ArgsWithOut returns Args with the -o value replaced by out, a path on this
// machine.
func (g *GoBuild) ArgsWithOut(out string) []string {
	args := slices.Clone(g.Args)
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = out
		}
	}
	return args
}

// ShellWords splits a command line as sh does for the simple lines a
// Dockerfile's RUN uses: blanks separate words, quotes group them. It
// refuses shell operators, so a build line stays a single command.
func ShellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case r == ';' || r == '&' || r == '|' || r == '>' || r == '<' || r == '`':
			return nil, fmt.Errorf("dockerfile: shell operator %q: keep the build a single command", r)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("dockerfile: unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// Expand replaces ${NAME}, ${NAME:-default} and $NAME with vars[NAME].
func Expand(s string, vars map[string]string) string {
	return os.Expand(s, func(v string) string {
		name, def, hasDef := strings.Cut(v, ":-")
		if val := vars[name]; val != "" || !hasDef {
			return val
		}
		return def
	})
}
