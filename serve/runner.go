package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/herd-ml/herd/fetch"
	"github.com/herd-ml/herd/job"
	"github.com/herd-ml/herd/model"
	"github.com/herd-ml/herd/worker"
)

// Runner runs train and input jobs on a worker pool: it fetches the job's
// files, checks out the model's state, calls the worker and, on success,
// saves the state as the model's new version. It implements job.Runner.
type Runner struct {
	Pool    *worker.Pool
	Fetcher fetch.Fetcher
	Models  *model.Manager
	TempDir string // per-job download directories go here; "" means os.TempDir()
}

var _ job.Runner = (*Runner)(nil)

// Run implements job.Runner.
func (r *Runner) Run(ctx context.Context, j *job.Job, progress func(float64)) (json.RawMessage, string, error) {
	dir, err := downloadDir(r.Fetcher, r.TempDir, "job-"+j.ID+"-", j.Files)
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)

	paths, err := fetchAll(ctx, r.Fetcher, j.Files, dir)
	if err != nil {
		if fetch.KindOf(err) == fetch.KindUnavailable {
			return nil, "", err // may work next time
		}
		return nil, "", job.Permanent(err)
	}
	work, err := r.Models.Checkout(ctx, j.Model)
	if err != nil {
		return nil, "", err
	}
	committed := false
	defer func() {
		if !committed {
			r.Models.Discard(work)
		}
	}()

	req := &worker.Request{ID: "job-" + j.ID, Op: worker.Op(j.Op), Model: j.Model, Files: paths, URIs: j.Files, StateDir: work}
	resp, err := r.Pool.Do(ctx, 0, req, func(f float64, _ string) { progress(f) })
	if err != nil {
		var remote *worker.RemoteError
		if errors.As(err, &remote) {
			return nil, remote.Log, job.Permanent(err)
		}
		if errors.Is(err, worker.ErrCancelled) {
			return nil, "", context.Cause(ctx)
		}
		return nil, "", err
	}
	committed = true
	if _, err := r.Models.Commit(ctx, j.Model, work); err != nil {
		return resp.Result, resp.Log, err
	}
	return resp.Result, resp.Log, nil
}

// downloadDir makes a directory for the remote files among uris, or returns
// "" when f uses all of them in place. os.RemoveAll("") is a no-op.
func downloadDir(f fetch.Fetcher, tempDir, prefix string, uris []string) (string, error) {
	ip, ok := f.(fetch.InPlace)
	for _, u := range uris {
		if !ok || !ip.InPlace(u) {
			return os.MkdirTemp(tempDir, prefix)
		}
	}
	return "", nil
}

// fetchAll fetches every URI into dir; the paths come in the URIs' order.
// Downloads (dir != "") run side by side, each distinct URI once: each
// costs at least a round trip, and a repeated URI would download into the
// same local name.
func fetchAll(ctx context.Context, f fetch.Fetcher, uris []string, dir string) ([]string, error) {
	paths := make([]string, len(uris))
	if dir == "" || len(uris) == 1 {
		for i, uri := range uris {
			p, err := f.Fetch(ctx, uri, dir)
			if err != nil {
				return nil, err
			}
			paths[i] = p
		}
		return paths, nil
	}
	first := map[string]int{} // URI -> index of its first occurrence
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, uri := range uris {
		if _, seen := first[uri]; seen {
			continue
		}
		first[uri] = i
		g.Go(func() (err error) {
			paths[i], err = f.Fetch(gctx, uri, dir)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, uri := range uris {
		paths[i] = paths[first[uri]]
	}
	return paths, nil
}

// errFromFetch maps a fetch failure to the API's answer.
func errFromFetch(err error) *apiError {
	switch fetch.KindOf(err) {
	case fetch.KindUnsupported:
		return errorf(400, codeUnsupportedURI, "%s", err)
	case fetch.KindInvalid:
		return errorf(400, codeInvalidField, "%s", err)
	case fetch.KindForbidden:
		return errorf(403, codeForbiddenFile, "%s", err)
	case fetch.KindNotFound:
		return errorf(400, codeFileNotFound, "%s", err)
	case fetch.KindTooLarge:
		return errorf(413, codeFileTooLarge, "%s", err)
	default:
		return &apiError{Status: 502, Code: codeFetchFailed, Message: fmt.Sprint(err)}
	}
}
