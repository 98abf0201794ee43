// Package notify has ready-made callbacks that tell people (or other systems)
// what happened to a task or a run: a JSON webhook, a Slack message and an
// e-mail. Each is a task.Callback, so it goes wherever a callback does:
//
//	load := task.Go("load", loadOrders,
//		task.Retries(2),
//		task.OnFailure(notify.Slack("", notify.WithURLFile("/etc/trellis/slack/url"))),
//		task.OnRetry(notify.Webhook("https://hooks.example.com/trellis")),
//	)
//
// # Webhook
//
// Webhook POSTs the event as JSON (the fields of WebhookPayload, in
// camelCase) with an Idempotency-Key header holding the event's key. Any 2xx
// answer is success:
//
//	notify.Webhook("https://ops.example.com/hooks/trellis",
//		notify.WithBearerTokenFile("/var/run/secrets/ops/token"),
//		notify.WithHeader("X-Team", "data-platform"),
//	)
//
// # Slack
//
// Slack posts to an incoming webhook: a one-line summary with an emoji per
// kind (":red_circle: Task orders_etl.load failed (try 3/3) in run
// scheduled__2026-01-02T00:00:00Z"), a link to the try, the error and the end
// of the log in code blocks:
//
//	notify.Slack("", notify.WithURLFile("/var/run/secrets/slack/webhook-url"))
//
// # E-mail
//
// Email sends a plain-text message over SMTP, with STARTTLS when the server
// offers it and AUTH PLAIN when a Username is set:
//
//	notify.Email(notify.SMTPConfig{
//		Addr:         "smtp.example.com:587",
//		From:         "Trellis <trellis@example.com>",
//		To:           []string{"data-oncall@example.com"},
//		Username:     "trellis",
//		PasswordFile: "/var/run/secrets/smtp/password",
//	})
//
// # Secrets
//
// A token, a password or a Slack webhook URL is best kept out of the DAG's
// code: WithBearerTokenFile, WithHeaderFile, WithURLFile and
// SMTPConfig.PasswordFile read a file at each call, so that a Kubernetes
// Secret mounted as a volume can be rotated without a restart. Errors name the
// notifier and the target's host ("notify: slack to hooks.slack.com: status
// 404 Not Found: \"no_service\""), never a URL's path, a header's value or a
// password.
//
// # Delivery
//
// The runner calls callbacks from a durable outbox after the change is
// committed: at least once (again after a crash), each call bounded by its
// ctx's deadline, and retried a few times when it returns an error. So a
// notifier may deliver one event twice; each carries the event's key for the
// receiver to recognize it: the webhook's Idempotency-Key header and key
// field, the e-mail's Message-ID. A notifier's error never changes a task's
// or a run's state; it is logged and counted.
//
// # Limits
//
// A notification stays small whatever the task printed: the log tail is cut
// to its last DefaultLogTailLimit bytes (WithLogTailLimit,
// SMTPConfig.LogTailLimit), the error to its first ErrorLimit bytes, and Slack
// cuts both further to fit its 3,000-character blocks. A call whose ctx has
// no deadline is bounded by DefaultTimeout.
package notify
