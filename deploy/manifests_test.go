// Package deploy_test checks the Kubernetes manifests in deploy/k8s: every
// object parses into its Kubernetes API type (strictly: a misspelt field
// fails), and the invariants a fleet relies on hold.
package deploy_test

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/herd-ml/herd/internal/testenv"
	"github.com/herd-ml/herd/job"
)

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) the
// checks read; KEDA's types are not in k8s.io/api.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32    `json:"minReplicaCount"`
		MaxReplicaCount *int32    `json:"maxReplicaCount"`
		PollingInterval *int32    `json:"pollingInterval"`
		CooldownPeriod  *int32    `json:"cooldownPeriod"`
		Triggers        []trigger `json:"triggers"`
	} `json:"spec"`
}

type trigger struct {
	Type     string            `json:"type"`
	Metadata map[string]string `json:"metadata"`
}

type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    []*corev1.Service
	secrets     map[string]*corev1.Secret
	pdbs        []*policyv1.PodDisruptionBudget
	scaled      []*scaledObject
}

// load reads every file kustomization.yaml lists (and fails on a YAML file
// it does not list).
func load(t *testing.T, dir string) *manifests {
	t.Helper()
	var kust struct {
		Resources []string `json:"resources"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &kust); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(kust.Resources, base) {
			t.Errorf("%s is not listed in kustomization.yaml", base)
		}
	}
	m := &manifests{deployments: map[string]*appsv1.Deployment{}, secrets: map[string]*corev1.Secret{}}
	for _, name := range kust.Resources {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", name, err)
		}
		for i, doc := range bytes.Split(raw, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s document %d: %v", name, i, err)
			}
			var obj any
			switch meta.Kind {
			case "Deployment":
				obj = &appsv1.Deployment{}
			case "Service":
				obj = &corev1.Service{}
			case "Secret":
				obj = &corev1.Secret{}
			case "PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "ScaledObject":
				obj = &scaledObject{}
			default:
				t.Fatalf("%s document %d: unexpected kind %q", name, i, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", name, i, meta.Kind, err)
			}
			switch o := obj.(type) {
			case *appsv1.Deployment:
				m.deployments[o.Name] = o
			case *corev1.Service:
				m.services = append(m.services, o)
			case *corev1.Secret:
				m.secrets[o.Name] = o
			case *policyv1.PodDisruptionBudget:
				m.pdbs = append(m.pdbs, o)
			case *scaledObject:
				m.scaled = append(m.scaled, o)
			}
		}
	}
	return m
}

func TestManifests(t *testing.T) {
	t.Parallel()
	m := load(t, "k8s")
	if len(m.deployments) < 5 || len(m.scaled) < 4 {
		t.Fatalf("%d Deployments and %d ScaledObjects: the hub, the nodes and three ML services expected", len(m.deployments), len(m.scaled))
	}

	for name, d := range m.deployments {
		pod := d.Spec.Template.Spec
		if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
			pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser == 0 {
			t.Errorf("%s: the pod must run as a non-root user (runAsNonRoot and a non-zero runAsUser)", name)
		}
		if !labelsMatch(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("%s: the selector does not select its own pods", name)
		}
		for _, c := range pod.Containers {
			where := name + "/" + c.Name
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s: readiness and liveness probes are required", where)
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[r]; !ok {
					t.Errorf("%s: no %s request", where, r)
				}
				if _, ok := c.Resources.Limits[r]; !ok {
					t.Errorf("%s: no %s limit", where, r)
				}
			}
			if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation must be false", where)
			}
			gpu := c.Resources.Limits["nvidia.com/gpu"]
			if d.Labels["herd.dev/gpu"] == "true" && gpu.Cmp(resource.MustParse("1")) < 0 {
				t.Errorf("%s: a GPU service must ask for nvidia.com/gpu", where)
			}
			if d.Labels["herd.dev/gpu"] != "true" && !gpu.IsZero() {
				t.Errorf("%s: asks for a GPU without the herd.dev/gpu label", where)
			}
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && pod.TerminationGracePeriodSeconds == nil {
				t.Errorf("%s: a preStop hook needs a terminationGracePeriodSeconds that covers it", where)
			}
			for _, from := range c.EnvFrom {
				if from.SecretRef != nil && m.secrets[from.SecretRef.Name] == nil {
					t.Errorf("%s: Secret %s is not in the manifests", where, from.SecretRef.Name)
				}
			}
			if slices.Contains(c.Args, "serve") {
				grace := flagValue(c.Args, "--shutdown-grace")
				if grace == "" || pod.TerminationGracePeriodSeconds == nil || int64(mustSeconds(t, grace))+5 > *pod.TerminationGracePeriodSeconds {
					t.Errorf("%s: terminationGracePeriodSeconds must cover --shutdown-grace (%q) and the preStop sleep", where, grace)
				}
				if c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
					t.Errorf("%s: herd serve is probed on /readyz (readiness) and /healthz (liveness)", where)
				}
			}
		}
	}

	for _, s := range m.scaled {
		d := m.deployments[s.Spec.ScaleTargetRef.Name]
		if d == nil {
			t.Errorf("ScaledObject %s targets %q, which is no Deployment here", s.Name, s.Spec.ScaleTargetRef.Name)
			continue
		}
		if s.Spec.MaxReplicaCount == nil || s.Spec.MinReplicaCount == nil || *s.Spec.MaxReplicaCount < *s.Spec.MinReplicaCount {
			t.Errorf("ScaledObject %s: min and max replicas must be set, min <= max", s.Name)
		}
		if len(s.Spec.Triggers) == 0 {
			t.Errorf("ScaledObject %s has no trigger", s.Name)
		}
		for _, tr := range s.Spec.Triggers {
			switch tr.Type {
			case "postgresql":
				queue := flagValue(d.Spec.Template.Spec.Containers[0].Args, "--queue")
				if queue == "" || !strings.Contains(tr.Metadata["query"], "queue = '"+queue+"'") {
					t.Errorf("ScaledObject %s: the query %q must count the queue its Deployment serves (--queue %q)", s.Name, tr.Metadata["query"], queue)
				}
				if tr.Metadata["connectionFromEnv"] != "DATABASE_URL" {
					t.Errorf("ScaledObject %s: connect with the Deployment's DATABASE_URL", s.Name)
				}
			case "selenium-grid":
				if !strings.HasSuffix(tr.Metadata["url"], "/graphql") {
					t.Errorf("ScaledObject %s: the selenium-grid trigger must point at the hub's /graphql", s.Name)
				}
			case "prometheus":
				if !strings.Contains(tr.Metadata["query"], "herd_") || tr.Metadata["threshold"] == "" {
					t.Errorf("ScaledObject %s: the prometheus trigger must query a herd_ metric with a threshold", s.Name)
				}
			default:
				t.Errorf("ScaledObject %s: unexpected trigger %q", s.Name, tr.Type)
			}
		}
		if d.Labels["herd.dev/gpu"] == "true" && !slices.ContainsFunc(s.Spec.Triggers, func(tr trigger) bool {
			return tr.Type == "prometheus" && strings.Contains(tr.Metadata["query"], "herd_gpu_utilization_ratio")
		}) {
			t.Errorf("ScaledObject %s: a GPU service also scales on GPU utilisation", s.Name)
		}
	}

	for _, p := range m.pdbs {
		if !slices.ContainsFunc(slices.Collect(maps.Values(m.deployments)), func(d *appsv1.Deployment) bool {
			return labelsMatch(p.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}) {
			t.Errorf("PodDisruptionBudget %s selects no Deployment's pods", p.Name)
		}
	}
	for _, s := range m.services {
		if !slices.ContainsFunc(slices.Collect(maps.Values(m.deployments)), func(d *appsv1.Deployment) bool {
			return labelsMatch(s.Spec.Selector, d.Spec.Template.Labels)
		}) {
			t.Errorf("Service %s selects no Deployment's pods", s.Name)
		}
	}
}

// TestPostgresTriggerQuery runs each postgresql trigger's query against
// herd's real job schema: it must count exactly the unfinished jobs of its
// service's queue.
func TestPostgresTriggerQuery(t *testing.T) {
	t.Parallel()
	m := load(t, "k8s")
	pool := testenv.PostgresPool(t)
	ctx := context.Background()
	queues := map[string]*job.Queue{}
	for _, s := range m.scaled {
		for _, tr := range s.Spec.Triggers {
			if tr.Type != "postgresql" {
				continue
			}
			queue := regexp.MustCompile(`queue = '([^']+)'`).FindStringSubmatch(tr.Metadata["query"])
			if queue == nil {
				t.Fatalf("%s: no queue in %q", s.Name, tr.Metadata["query"])
			}
			q, err := job.OpenPostgres(ctx, pool, job.Config{Queue: queue[1]})
			if err != nil {
				t.Fatal(err)
			}
			queues[s.Name] = q
		}
	}
	if len(queues) < 3 {
		t.Fatalf("%d postgresql triggers, want one per ML service", len(queues))
	}
	// A different number of jobs per queue, so a query that counted the
	// wrong queue, or all of them, would be caught.
	want := map[string]int{}
	i := 0
	for name, q := range queues {
		i++
		for range i {
			if _, err := q.Submit(ctx, job.Args{Op: "train", Model: "m", Files: []string{"x"}}); err != nil {
				t.Fatal(err)
			}
		}
		want[name] = i
	}
	for _, s := range m.scaled {
		for _, tr := range s.Spec.Triggers {
			if tr.Type != "postgresql" {
				continue
			}
			var n int
			if err := pool.QueryRow(ctx, tr.Metadata["query"]).Scan(&n); err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
			if n != want[s.Name] {
				t.Errorf("%s: the trigger's query counts %d jobs, want %d", s.Name, n, want[s.Name])
			}
		}
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func mustSeconds(t *testing.T, d string) float64 {
	t.Helper()
	dur, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("duration %q: %v", d, err)
	}
	return dur.Seconds()
}

// TestDockerfiles checks what can be checked without a Docker daemon: the
// compose file parses, every image it builds has its Dockerfile, every file
// a Dockerfile copies from the repository exists, and every worker a
// service runs is copied into its image.
func TestDockerfiles(t *testing.T) {
	t.Parallel()
	var compose struct {
		Services map[string]struct {
			Build *struct {
				Dockerfile string `json:"dockerfile"`
			} `json:"build"`
			Command []string `json:"command"`
		} `json:"services"`
	}
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	copied := map[string][]string{} // Dockerfile -> repository paths it copies
	files, _ := filepath.Glob("docker/*.Dockerfile")
	if len(files) < 4 {
		t.Fatalf("%d Dockerfiles, want herd, the node and the two worker images", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 3 || fields[0] != "COPY" || strings.HasPrefix(fields[1], "--from") || fields[1] == "." {
				continue
			}
			for _, src := range fields[1 : len(fields)-1] {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("%s copies %s: %v", f, src, err)
				}
				copied["deploy/"+f] = append(copied["deploy/"+f], src)
			}
		}
		if !strings.Contains(string(raw), "USER ") || strings.Contains(string(raw), "USER root") {
			t.Errorf("%s: the image must run as a non-root USER", f)
		}
	}
	for name, svc := range compose.Services {
		if svc.Build == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("..", svc.Build.Dockerfile)); err != nil {
			t.Errorf("compose service %s builds %s: %v", name, svc.Build.Dockerfile, err)
		}
		if worker := flagValue(svc.Command, "--worker"); worker != "" {
			script := strings.Fields(worker)[1]
			if !slices.ContainsFunc(copied[svc.Build.Dockerfile], func(src string) bool { return strings.HasPrefix(script, strings.TrimSuffix(src, "/")) }) {
				t.Errorf("compose service %s runs %s, which %s does not copy", name, script, svc.Build.Dockerfile)
			}
		}
	}
}
