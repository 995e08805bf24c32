// Package metrics exports Bulwark's state to Prometheus.
//
// A Collector reads snapshots at scrape time, so the request path pays
// nothing for metrics and endpoints created later appear on their own:
//
//	c, err := metrics.New(metrics.Config{Manager: m})
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(c)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Every metric carries an endpoint label (a route pattern, never a raw
// path). User IDs never become labels.
package metrics
