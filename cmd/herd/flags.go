package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, string(os.PathListSeparator)) }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// applyEnv sets every flag not given on the command line from its HERD_*
// environment variable (--job-workers: HERD_JOB_WORKERS). A list flag's
// variable holds its values separated by the OS path-list separator.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		values := []string{v}
		if _, isList := f.Value.(*stringList); isList {
			values = filepath.SplitList(v)
		}
		for _, v := range values {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = usageError{fmt.Sprintf("%s=%q: %v", name, v, serr)}
				return
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "HERD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
