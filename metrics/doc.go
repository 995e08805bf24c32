// Package metrics exports Bulwark's state to Prometheus.
//
// A Collector reads snapshots of a core.Manager's endpoints at scrape time,
// so the request path pays nothing for metrics and endpoints created later
// appear on their own. Register it on a registry of your choice; Bulwark
// never registers anything globally:
//
//	c, err := metrics.New(metrics.Config{Manager: m, Namespace: "myapp"})
//	if err != nil { return err }
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(c)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// What is exported follows the Manager's configuration:
//
//   - every endpoint: circuit_breaker_state, circuit_breaker_requests_total
//     (and its _successful, _failed, _injected_failures and _rejected
//     parts: _failed counts real failures only, _injected_failures those
//     fault experiments made; and circuit_breaker_requests_timeout_total,
//     the failures that ran out of time),
//     circuit_breaker_state_transitions_total and the
//     circuit_breaker_request_duration_seconds histogram;
//   - endpoints a fault experiment ran on: fault_injected_total, by fault
//     ("latency", "status", "abort");
//   - endpoints with a bulkhead: bulkhead_active_requests,
//     bulkhead_queued_requests, bulkhead_requests_total,
//     bulkhead_requests_rejected_total, bulkhead_requests_timeout_total and
//     bulkhead_queue_duration_seconds;
//   - endpoints with an SLO: slo_success_ratio,
//     slo_error_budget_remaining_ratio and slo_burn_rate (window "long" and
//     "short");
//   - endpoints whose retry policy made calls (outbound, through the
//     nethttp Transport): retry_calls_total, retry_retries_total,
//     retry_exhausted_total and retry_aborted_by_breaker_total;
//   - endpoints with a rate limit: rate_limit_requests_allowed_total,
//     rate_limit_requests_refused_total and rate_limit_rate;
//   - endpoints with an adaptive concurrency limit: adaptive_limit,
//     adaptive_limit_active_requests, adaptive_limit_queued_requests,
//     adaptive_limit_admitted_total, adaptive_limit_shed_total (by
//     priority), adaptive_limit_baseline_latency_seconds and
//     adaptive_limit_recent_latency_seconds;
//   - endpoints with a hedge policy: hedge_requests_total;
//   - with ManagerConfig.PerUser set: per_user_bulkhead_tracked_users and
//     per_user_bulkhead_rejected_total, summed over all users; with
//     ManagerConfig.PerUserRateLimit, per_user_rate_limit_tracked_users,
//     per_user_rate_limit_requests_allowed_total and
//     per_user_rate_limit_requests_refused_total.
//
// Every endpoint metric carries an endpoint label (a route pattern or a
// name you gave, never a raw path). User IDs never become labels: there is
// no bound on them.
package metrics
