package serve

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAPI checks the document against the real handlers: every
// documented operation answers with a documented status and the required
// fields of its schema, every served endpoint is documented, and docs/ holds
// the same document.
func TestOpenAPI(t *testing.T) {
	t.Parallel()

	docs, err := os.ReadFile("../docs/openapi.json")
	if err != nil || !bytes.Equal(docs, openAPI) {
		t.Fatalf("docs/openapi.json differs from serve/openapi.json (copy it over): %v", err)
	}
	var spec struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas   map[string]schema          `json:"schemas"`
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &spec); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", spec.OpenAPI)
	}

	for _, e := range endpoints {
		method, path, _ := strings.Cut(e, " ")
		path, _, _ = strings.Cut(path, "?")
		if _, ok := spec.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("served endpoint %s is not documented", e)
		}
	}

	b := setup(t, setupOpts{worker: "python"})
	jobID := b.submit(t, "/train", `{"Files": ["a.txt"]}`)
	b.wait(t, jobID)

	resolve := func(raw json.RawMessage) operationResponse {
		var r operationResponse
		_ = json.Unmarshal(raw, &r)
		if r.Ref != "" {
			_ = json.Unmarshal(spec.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")], &r)
		}
		return r
	}
	for path, ops := range spec.Paths {
		for method, rawOp := range ops {
			if method == "parameters" {
				continue
			}
			var op struct {
				Responses   map[string]json.RawMessage `json:"responses"`
				RequestBody json.RawMessage            `json:"requestBody"`
			}
			if err := json.Unmarshal(rawOp, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			url := strings.ReplaceAll(strings.ReplaceAll(path, "{id}", jobID), "{key}", "never-trained")
			if path == "/status" {
				url += "?jobId=" + jobID
			}
			body := ""
			if op.RequestBody != nil {
				body = `{"Files": ["a.txt"]}`
			}
			if method == "delete" && path == "/jobs/{id}" {
				// Cancel a queued job so the 200 answer is exercised.
				url = "/jobs/" + b.submit(t, "/train", `{"Files": ["a.txt"], "model": "to-cancel"}`)
			}
			status, _, raw := b.call(t, strings.ToUpper(method), url, body)
			code := strconv.Itoa(status)
			rawResp, ok := op.Responses[code]
			if !ok && !(method == "delete" && status == 409) { // the job may have finished first
				t.Errorf("%s %s answered %d, which is not documented: %s", method, path, status, raw)
				continue
			}
			if !ok {
				continue
			}
			r := resolve(rawResp)
			ref := r.Content["application/json"].Schema.Ref
			if ref == "" {
				continue
			}
			sc := spec.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Errorf("%s %s: body is not a JSON object: %s", method, path, raw)
				continue
			}
			for _, field := range sc.Required {
				if _, ok := got[field]; !ok {
					t.Errorf("%s %s %d: body lacks required %q: %s", method, path, status, field, raw)
				}
			}
		}
	}
}

type schema struct {
	Required []string `json:"required"`
}

type operationResponse struct {
	Ref     string `json:"$ref"`
	Content map[string]struct {
		Schema struct {
			Ref string `json:"$ref"`
		} `json:"schema"`
	} `json:"content"`
}
