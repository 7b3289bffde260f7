package webdriver

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMatches(t *testing.T) {
	t.Parallel()

	stereotype := map[string]any{"browserName": "chrome", "browserVersion": "156.0.8078.108", "platformName": "linux",
		LabelsCapability: map[string]any{"region": "eu"}}
	tests := []struct {
		name string
		caps map[string]any
		want bool
	}{
		{"anything", map[string]any{}, true},
		{"same browser", map[string]any{"browserName": "chrome"}, true},
		{"chromium is chrome", map[string]any{"browserName": "chromium"}, true},
		{"other browser", map[string]any{"browserName": "firefox"}, false},
		{"major version", map[string]any{"browserVersion": "156"}, true},
		{"full version", map[string]any{"browserVersion": "156.0.8078.108"}, true},
		{"other version", map[string]any{"browserVersion": "155"}, false},
		{"stable", map[string]any{"browserVersion": "stable"}, true},
		{"platform any case", map[string]any{"platformName": "LINUX"}, true},
		{"platform any", map[string]any{"platformName": "any"}, true},
		{"other platform", map[string]any{"platformName": "windows"}, false},
		{"label present", map[string]any{LabelsCapability: map[string]any{"region": "eu"}}, true},
		{"label differs", map[string]any{LabelsCapability: map[string]any{"region": "us"}}, false},
		{"label missing", map[string]any{LabelsCapability: map[string]any{"gpu": "yes"}}, false},
	}
	for _, tt := range tests {
		if got := Matches(stereotype, tt.caps); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewSession(t *testing.T) {
	t.Parallel()

	body := `{"capabilities":{"alwaysMatch":{"browserName":"chrome","herd:labels":{"region":"eu"},"goog:chromeOptions":{"args":["x"]}},
		"firstMatch":[{"platformName":"linux"},{"platformName":"mac"}]},"vendorField":{"kept":true}}`
	ns, err := ParseNewSession([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	cands, err := ns.Candidates()
	if err != nil || len(cands) != 2 || cands[1]["platformName"] != "mac" || cands[1]["browserName"] != "chrome" {
		t.Fatalf("candidates = %v, %v", cands, err)
	}
	fwd := string(ns.Forwardable())
	if strings.Contains(fwd, "herd:labels") || !strings.Contains(fwd, `"vendorField":{"kept":true}`) || !strings.Contains(fwd, "goog:chromeOptions") {
		t.Fatalf("forwarded = %s: herd's capability must go, everything else stay", fwd)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(fwd), &back); err != nil {
		t.Fatal(err)
	}

	if _, err := ParseNewSession([]byte(`{"desiredCapabilities":{"browserName":"chrome"}}`)); err != nil {
		t.Fatalf("legacy desiredCapabilities refused: %v", err)
	}
	for _, bad := range []string{`[]`, `{}`, `{"capabilities":[]}`} {
		if _, err := ParseNewSession([]byte(bad)); err == nil || err.Code != ErrInvalidArgument {
			t.Errorf("ParseNewSession(%s) = %v, want invalid argument", bad, err)
		}
	}
	dup, _ := ParseNewSession([]byte(`{"capabilities":{"alwaysMatch":{"browserName":"chrome"},"firstMatch":[{"browserName":"chrome"}]}}`))
	if _, err := dup.Candidates(); err == nil || !strings.Contains(err.Message, "both alwaysMatch and firstMatch") {
		t.Fatalf("duplicate key accepted: %v", err)
	}
}
