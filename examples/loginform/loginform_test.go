// Package loginform_test runs the login-form suite end to end on small
// fixture pages: herd serve-dir serves them, herd standalone runs Chromium,
// herd run drives login.test.js (the official JavaScript bindings) over them,
// and report.js prints the accuracy table. The public corpora are for
// evaluate.sh; these pages are the suite's own.
package loginform_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/gridtest"
	"github.com/herd-ml/herd/internal/testenv"
	"github.com/herd-ml/herd/junit"
)

// Fixture pages, labelled as Fathom labels them: data-fathom="username",
// "password" and "next" on the real elements; none on pages without a
// login form.
var pages = map[string]string{
	"login": `<title>Sign in</title><h1>Sign in to Example</h1>
<form action="/session" method="post">
  <label for="e">Email</label> <input id="e" type="email" name="email" data-fathom="username">
  <label for="p">Password</label> <input id="p" type="password" name="password" data-fathom="password">
  <label><input type="checkbox" name="remember"> Remember me</label>
  <button type="submit" data-fathom="next">Sign in</button>
  <a href="/forgot">Forgot your password?</a> <a href="/join">Create an account</a>
</form>`,
	"german-without-form": `<html lang="de"><title>Kundenkonto</title><h2>Anmelden</h2>
<div class="login-box"><table>
  <tr><td>Benutzername:</td><td><input type="text" name="benutzer" data-fathom="username"></td></tr>
  <tr><td>Passwort:</td><td><input type="password" name="kennwort" data-fathom="password"></td></tr>
</table><input type="button" value="Anmelden" data-fathom="next"> <a href="/registrieren">Registrieren</a></div></html>`,
	"two-step": `<title>Sign in</title><h1>Sign in</h1>
<form action="/identifier"><input type="email" name="identifier" autocomplete="username" placeholder="Email or phone" data-fathom="username">
<button data-fathom="next">Next</button></form>`,
	"header-and-main": `<title>Shop</title>
<header id="top"><form action="/login" class="mini-login"><input name="user" placeholder="User"><input type="password" name="pw"><button>Go</button></form></header>
<main><h1>Log in to your account</h1><form action="/login">
  <input name="login" placeholder="Username" data-fathom="username"> <input type="password" name="pass" placeholder="Password" data-fathom="password">
  <input type="submit" value="Log in" data-fathom="next"></form></main>`,
	"signup": `<title>Create your account</title><h1>Create your account</h1>
<form action="/register"><input name="name" placeholder="Full name"> <input type="email" name="email" placeholder="Email">
<input type="password" name="password" placeholder="At least 8 characters"> <input type="password" name="password2" placeholder="Repeat password">
<button>Create account</button></form>`,
	"search-and-newsletter": `<title>News</title><form role="search"><input type="search" name="q"><button>Search</button></form>
<form action="/newsletter"><input type="email" name="email" placeholder="Your email"><button>Subscribe</button></form>`,
	"checkout": `<title>Checkout</title><h1>Payment</h1><form action="/pay"><input name="cardnumber" placeholder="Card number">
<input type="password" name="cvv" placeholder="CVV"><button>Pay now</button></form>`,
}

func TestSuiteThroughHerdRun(t *testing.T) {
	gridtest.Chrome(t)
	node := testenv.Command(t, "node")
	here, _ := os.Getwd()
	gridtest.NPMInstall(t, here, "selenium-webdriver")
	dir := t.TempDir()
	herd := filepath.Join(dir, "herd")
	if out, err := exec.Command("go", "build", "-o", herd, "github.com/herd-ml/herd/cmd/herd").CombinedOutput(); err != nil {
		t.Fatalf("build herd: %v\n%s", err, out)
	}

	site := filepath.Join(dir, "site")
	if err := os.Mkdir(site, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, html := range pages {
		if err := os.WriteFile(filepath.Join(site, name+".html"), []byte(html), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pagesAddr, gridAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	testenv.Start(t, herd, "serve-dir", "--addr", pagesAddr, site)
	testenv.Start(t, herd, "standalone", "--addr", gridAddr, "--browser", "maxSessions=2", "--profile-dir", gridtest.ProfileDir(t), "--log-level", "warn")
	testenv.WaitHTTP(t, "http://"+pagesAddr+"/login.html", 30*time.Second)
	testenv.WaitHTTP(t, "http://"+gridAddr+"/status", 30*time.Second)

	labels := map[string]any{}
	var targets []string
	for name, html := range pages {
		url := "http://" + pagesAddr + "/" + name + ".html"
		labels[url] = map[string]any{"corpus": "fathom", "split": "fixtures", "positive": strings.Contains(html, "data-fathom")}
		targets = append(targets, url+" "+name)
	}
	b, _ := json.Marshal(labels)
	labelsFile := filepath.Join(dir, "labels.json")
	targetsFile := filepath.Join(dir, "targets.txt")
	results := filepath.Join(dir, "results")
	report := filepath.Join(dir, "report.xml")
	if err := os.WriteFile(labelsFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(targetsFile, []byte(strings.Join(targets, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	run := exec.Command(herd, "run", "--grid", "http://"+gridAddr, "--targets", targetsFile, "--batch", "3", "--junit", report, "--",
		node, "--test", "--test-reporter=junit", "--test-reporter-destination={report}", filepath.Join(here, "login.test.js"))
	run.Env = append(os.Environ(), "LOGINFORM_LABELS="+labelsFile, "LOGINFORM_RESULTS="+results)
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("herd run of the suite: %v\n%s", err, out)
	}

	rep, err := junit.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Suites) != len(pages) || rep.Failures+rep.Errors != 0 {
		t.Fatalf("report: %d suites for %d pages, %+v\n%s", len(rep.Suites), len(pages), rep.Totals, out)
	}
	for _, s := range rep.Suites {
		var names []string
		for _, c := range s.Cases {
			names = append(names, c.Name)
		}
		want := "finds the username field, finds the password field, finds the submit button"
		if !strings.Contains(pages[s.Name], "data-fathom") {
			want = "finds no login form"
		}
		if strings.Join(names, ", ") != want {
			t.Errorf("suite %s has cases %q, want %q", s.Name, names, want)
		}
	}

	table, err := exec.Command(node, filepath.Join(here, "report.js"), results).CombinedOutput()
	if err != nil {
		t.Fatalf("report.js: %v\n%s", err, table)
	}
	wantRow := "| Fathom (all) | 4 | 100.0% (4) | 100.0% (3) | 100.0% (4) | 100.0% | 3 | 0.0% |"
	if !strings.Contains(string(table), wantRow) {
		t.Fatalf("accuracy table lacks %q:\n%s", wantRow, table)
	}
}
