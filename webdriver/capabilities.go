package webdriver

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// LabelsCapability is herd's extension capability: a map of labels a node
// must carry, e.g. {"herd:labels": {"region": "eu"}}. The hub removes it
// before forwarding.
const LabelsCapability = "herd:labels"

// NewSession is a parsed new-session request. Raw keeps the whole body so
// unknown top-level fields and vendor capabilities travel untouched.
type NewSession struct {
	Raw         map[string]json.RawMessage
	AlwaysMatch map[string]any
	FirstMatch  []map[string]any
}

// ReadNewSession reads and parses a new-session request's body (at most
// 8 MiB) and returns it with its merged capability candidates.
func ReadNewSession(r *http.Request) (*NewSession, []map[string]any, *Error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, nil, Errorf(ErrInvalidArgument, "cannot read body: %v", err)
	}
	ns, werr := ParseNewSession(body)
	if werr != nil {
		return nil, nil, werr
	}
	candidates, werr := ns.Candidates()
	if werr != nil {
		return nil, nil, werr
	}
	return ns, candidates, nil
}

// ParseNewSession reads a new-session body. A body with no "capabilities"
// (legacy JSON Wire clients send only desiredCapabilities) is read from
// "desiredCapabilities" as if it were alwaysMatch.
func ParseNewSession(body []byte) (*NewSession, *Error) {
	ns := &NewSession{}
	if err := json.Unmarshal(body, &ns.Raw); err != nil {
		return nil, Errorf(ErrInvalidArgument, "new session body is not a JSON object: %v", err)
	}
	var caps struct {
		AlwaysMatch map[string]any   `json:"alwaysMatch"`
		FirstMatch  []map[string]any `json:"firstMatch"`
	}
	switch {
	case ns.Raw["capabilities"] != nil:
		if err := json.Unmarshal(ns.Raw["capabilities"], &caps); err != nil {
			return nil, Errorf(ErrInvalidArgument, "capabilities must be {\"alwaysMatch\": {...}, \"firstMatch\": [{...}]}: %v", err)
		}
	case ns.Raw["desiredCapabilities"] != nil:
		if err := json.Unmarshal(ns.Raw["desiredCapabilities"], &caps.AlwaysMatch); err != nil {
			return nil, Errorf(ErrInvalidArgument, "desiredCapabilities must be an object: %v", err)
		}
	default:
		return nil, Errorf(ErrInvalidArgument, "new session body has no \"capabilities\"")
	}
	ns.AlwaysMatch, ns.FirstMatch = caps.AlwaysMatch, caps.FirstMatch
	return ns, nil
}

// Candidates merges alwaysMatch with each firstMatch entry, as the spec's
// "processing capabilities" does. A key in both is an error.
func (ns *NewSession) Candidates() ([]map[string]any, *Error) {
	firsts := ns.FirstMatch
	if len(firsts) == 0 {
		firsts = []map[string]any{{}}
	}
	out := make([]map[string]any, 0, len(firsts))
	for _, fm := range firsts {
		merged := make(map[string]any, len(ns.AlwaysMatch)+len(fm))
		for k, v := range ns.AlwaysMatch {
			merged[k] = v
		}
		for k, v := range fm {
			if _, dup := ns.AlwaysMatch[k]; dup {
				return nil, Errorf(ErrInvalidArgument, "capability %q is in both alwaysMatch and firstMatch", k)
			}
			merged[k] = v
		}
		out = append(out, merged)
	}
	return out, nil
}

// Forwardable returns the body to send to a node: the original with herd's
// own extension capabilities removed, everything else untouched.
func (ns *NewSession) Forwardable() []byte {
	raw := make(map[string]json.RawMessage, len(ns.Raw))
	for k, v := range ns.Raw {
		raw[k] = v
	}
	caps := map[string]any{}
	if ns.AlwaysMatch != nil {
		caps["alwaysMatch"] = stripHerd(ns.AlwaysMatch)
	}
	if ns.FirstMatch != nil {
		fms := make([]map[string]any, len(ns.FirstMatch))
		for i, fm := range ns.FirstMatch {
			fms[i] = stripHerd(fm)
		}
		caps["firstMatch"] = fms
	}
	if _, ok := raw["capabilities"]; ok {
		b, _ := json.Marshal(caps)
		raw["capabilities"] = b
	}
	if d, ok := raw["desiredCapabilities"]; ok {
		var desired map[string]any
		if json.Unmarshal(d, &desired) == nil {
			b, _ := json.Marshal(stripHerd(desired))
			raw["desiredCapabilities"] = b
		}
	}
	b, _ := json.Marshal(raw)
	return b
}

func stripHerd(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, "herd:") {
			out[k] = v
		}
	}
	return out
}

// Matches reports whether a slot whose stereotype (browserName,
// browserVersion, platformName, herd:labels) is given can serve the
// requested capabilities. Capabilities a stereotype does not mention are
// left to the driver to accept or refuse.
func Matches(stereotype, caps map[string]any) bool {
	if want, ok := caps["browserName"].(string); ok && want != "" {
		if have, _ := stereotype["browserName"].(string); !sameBrowser(have, want) {
			return false
		}
	}
	if want, ok := caps["browserVersion"].(string); ok && want != "" && want != "stable" && want != "latest" {
		have, _ := stereotype["browserVersion"].(string)
		if have != "" && have != want && !strings.HasPrefix(have, want+".") {
			return false
		}
	}
	if want, ok := caps["platformName"].(string); ok && want != "" && !strings.EqualFold(want, "any") {
		have, _ := stereotype["platformName"].(string)
		if have != "" && !strings.EqualFold(have, want) {
			return false
		}
	}
	if want, ok := caps[LabelsCapability].(map[string]any); ok {
		have, _ := stereotype[LabelsCapability].(map[string]any)
		for k, v := range want {
			if have[k] != v {
				return false
			}
		}
	}
	return true
}

// sameBrowser treats "chrome" and "chromium" as one browser: chromedriver
// drives both and reports "chrome".
func sameBrowser(have, want string) bool {
	norm := func(s string) string {
		s = strings.ToLower(s)
		if s == "chromium" {
			return "chrome"
		}
		return s
	}
	return norm(have) == norm(want)
}

// Describe names what candidates ask for (browser, version, platform,
// labels), for error messages.
func Describe(candidates []map[string]any) string {
	parts := make([]string, 0, len(candidates))
	for _, c := range candidates {
		m := map[string]any{}
		for _, k := range []string{"browserName", "browserVersion", "platformName", LabelsCapability} {
			if v, ok := c[k]; ok {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		parts = append(parts, string(b))
	}
	return strings.Join(parts, " or ")
}
