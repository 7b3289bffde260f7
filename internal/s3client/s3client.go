// Package s3client builds the S3 client that herd uses for input files and
// model state, for AWS and for S3-compatible stores (MinIO, Ceph, R2, ...),
// and sorts its errors into the few cases callers answer differently.
//
// Credentials come only from the AWS SDK's standard chain (environment,
// shared config and credentials files, web identity, container and instance
// roles): herd has no flag for them and never logs them.
package s3client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Options say where the store is. Zero values take the SDK's defaults.
type Options struct {
	Endpoint    string // e.g. http://127.0.0.1:9000 for MinIO; "" for AWS
	Region      string // "" means the SDK's chain (AWS_REGION, config files), else us-east-1
	PathStyle   bool   // bucket in the path, not the host name (MinIO, most self-hosted stores)
	MaxAttempts int    // tries per request, throttling and network errors included; default 5
	// Credentials replace the SDK's chain; for tests and embedding only.
	Credentials aws.CredentialsProvider
}

// New returns an S3 client for opts.
func New(ctx context.Context, opts Options) (*s3.Client, error) {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	loadOpts := []func(*config.LoadOptions) error{
		// From SDK service/s3 v1.73 on, checksums are computed and demanded
		// by default, which many S3-compatible stores reject; AWS itself
		// needs them only where an operation requires them.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opts.MaxAttempts
				o.MaxBackoff = 5 * time.Second
			})
		}),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = 32
		})),
	}
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opts.Credentials))
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("cannot load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
	}), nil
}

// Problem is what went wrong with a request, in the terms callers answer.
type Problem int

// The problems callers tell apart.
const (
	Other        Problem = iota // network, timeout, server error
	NoSuchKey                   // the object does not exist
	NoSuchBucket                // the bucket does not exist
	AccessDenied                // the credentials may not do this
)

// Classify sorts err from an S3 call.
func Classify(err error) Problem {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return NoSuchKey
		case "NoSuchBucket":
			return NoSuchBucket
		case "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return AccessDenied
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case http.StatusNotFound:
			return NoSuchKey
		case http.StatusForbidden:
			return AccessDenied
		}
	}
	return Other
}

// Short is err's message without the SDK's request IDs and operation
// wrapping, for error messages users read.
func Short(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if msg := apiErr.ErrorMessage(); msg != "" {
			return apiErr.ErrorCode() + ": " + msg
		}
		return apiErr.ErrorCode()
	}
	return err.Error()
}
