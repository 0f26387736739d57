package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"
)

// dockerfile is the part of a Dockerfile these tests need.
type dockerfile struct {
	stages []*stage
}

// stage is one FROM ... section.
type stage struct {
	from, name string
	workdir    string
	args       map[string]string // ARG NAME[=default]
	runs       []string          // RUN lines, continuations joined
	copies     []copyInstr
	user       string
	entrypoint []string
}

type copyInstr struct {
	from     string // --from stage, empty for the build context
	src      []string
	dest     string
	platform string
}

// parseDockerfile reads the instructions this project's Dockerfile uses and
// refuses any other, so a new instruction is noticed by the tests.
func parseDockerfile(file string) (*dockerfile, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
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
		return nil, err
	}

	d := &dockerfile{}
	var st *stage
	for _, line := range lines {
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		if strings.ToUpper(instr) != "FROM" && st == nil {
			return nil, fmt.Errorf("%s before the first FROM", instr)
		}
		switch strings.ToUpper(instr) {
		case "FROM":
			words := strings.Fields(rest)
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				words = words[1:]
			}
			st = &stage{args: map[string]string{}, workdir: "/"}
			switch {
			case len(words) == 1:
				st.from = words[0]
			case len(words) == 3 && strings.EqualFold(words[1], "AS"):
				st.from, st.name = words[0], words[2]
			default:
				return nil, fmt.Errorf("FROM %s: want IMAGE [AS NAME]", rest)
			}
			d.stages = append(d.stages, st)
		case "ARG":
			name, def, _ := strings.Cut(rest, "=")
			st.args[name] = def
		case "WORKDIR":
			st.workdir = path.Join(st.workdir, rest)
		case "RUN":
			st.runs = append(st.runs, rest)
		case "COPY":
			words := strings.Fields(rest)
			var c copyInstr
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				k, v, _ := strings.Cut(strings.TrimPrefix(words[0], "--"), "=")
				switch k {
				case "from":
					c.from = v
				case "platform":
					c.platform = v
				default:
					return nil, fmt.Errorf("COPY --%s is not understood by this test", k)
				}
				words = words[1:]
			}
			if len(words) < 2 {
				return nil, fmt.Errorf("COPY %s: want SRC... DEST", rest)
			}
			c.src, c.dest = words[:len(words)-1], words[len(words)-1]
			st.copies = append(st.copies, c)
		case "USER":
			st.user = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &st.entrypoint); err != nil {
				return nil, fmt.Errorf("ENTRYPOINT must be the exec (JSON) form: %w", err)
			}
		default:
			return nil, fmt.Errorf("instruction %s is not understood by this test; teach test/deploy about it", instr)
		}
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return d, nil
}

func (d *dockerfile) final() *stage { return d.stages[len(d.stages)-1] }

func (d *dockerfile) stage(name string) *stage {
	for _, s := range d.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// shellWords splits a command line as sh does for the simple lines a
// Dockerfile's RUN uses: blanks separate words, quotes group them.
func shellWords(s string) ([]string, error) {
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
			return nil, fmt.Errorf("shell operator %q: keep the build a single command", r)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// expand replaces ${NAME}, ${NAME:-default} and $NAME with vars[NAME].
func expand(s string, vars map[string]string) string {
	return os.Expand(s, func(v string) string {
		name, def, hasDef := strings.Cut(v, ":-")
		if val := vars[name]; val != "" || !hasDef {
			return val
		}
		return def
	})
}
