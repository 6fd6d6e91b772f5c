{{/*
bru.toml (docs/config.md). Relative paths are relative to /etc/bru; Secrets
are mounted under bru.secretsDir and named by absolute path.
*/}}
{{- define "bru.toml" -}}
{{- $secrets := include "bru.secretsDir" . -}}
{{- $c := .Values.config -}}
# Rendered by the Helm chart {{ include "bru.chart" . }}; change the values, not this file.
policy = "policy.toml"
public_url = {{ include "bru.publicUrl" . | toJson }}
allow_synthetic_ids = false

[server]
listen = "0.0.0.0:{{ include "bru.publicPort" . }}"
ops_listen = "0.0.0.0:{{ include "bru.opsPort" . }}"
tls_cert = {{ printf "%s/tls/tls.crt" $secrets | toJson }}
tls_key = {{ printf "%s/tls/tls.key" $secrets | toJson }}
max_header_bytes = {{ int64 $c.server.maxHeaderBytes }}
max_body_bytes = {{ int64 $c.server.maxBodyBytes }}
header_read_timeout_ms = {{ int64 $c.server.headerReadTimeoutMs }}
body_read_timeout_ms = {{ int64 $c.server.bodyReadTimeoutMs }}
http2_idle_timeout_ms = {{ int64 $c.server.http2IdleTimeoutMs }}
max_connections_per_address = {{ int64 $c.server.maxConnectionsPerAddress }}
shutdown_grace_ms = {{ int64 $c.server.shutdownGraceMs }}

[store]
url_file = {{ printf "%s/database/url" $secrets | toJson }}
audit_write_timeout_ms = {{ int64 $c.store.auditWriteTimeoutMs }}
{{- $dbtls := .Values.database.tls }}
tls = {{ $dbtls.mode | toJson }}
{{- if eq $dbtls.mode "verify-full" }}
ca_file = {{ printf "%s/database/ca.crt" $secrets | toJson }}
{{- if $dbtls.clientSecretName }}
client_cert_file = {{ printf "%s/database/client.crt" $secrets | toJson }}
client_key_file = {{ printf "%s/database/client.key" $secrets | toJson }}
{{- end }}
{{- end }}

[keys]
pseudonym_key_file = {{ printf "%s/keys/pseudonym.key" $secrets | toJson }}
assertion_key_file = {{ printf "%s/keys/assertion.pem" $secrets | toJson }}
checkpoint_key_file = {{ printf "%s/keys/checkpoint.pem" $secrets | toJson }}
{{- range $i, $is := $c.issuers }}

[[issuer]]
name = {{ $is.name | toJson }}
kind = {{ $is.kind | toJson }}
issuer = {{ $is.issuer | toJson }}
jwks_url = {{ $is.jwksUrl | toJson }}
algorithms = {{ $is.algorithms | default (list "RS256") | toJson }}
{{- with $is.audience }}
audience = {{ . | toJson }}
{{- end }}
{{- if hasKey $is "leewaySeconds" }}
leeway_s = {{ int64 $is.leewaySeconds }}
{{- end }}
{{- if hasKey $is "maxTokenBytes" }}
max_token_bytes = {{ int64 $is.maxTokenBytes }}
{{- end }}
{{- if hasKey $is "jwksRefreshMinIntervalMs" }}
jwks_refresh_min_interval_ms = {{ int64 $is.jwksRefreshMinIntervalMs }}
{{- end }}
{{- if $is.caConfigMap }}
ca_file = {{ printf "/etc/bru-issuer-ca/%d/ca.crt" $i | toJson }}
{{- end }}
{{- end }}
{{- range $name, $u := $c.upstreams }}

[upstream.{{ $name }}]
url = {{ $u.url | toJson }}
{{- if hasKey $u "connectTimeoutMs" }}
connect_timeout_ms = {{ int64 $u.connectTimeoutMs }}
{{- end }}
{{- if hasKey $u "requestTimeoutMs" }}
request_timeout_ms = {{ int64 $u.requestTimeoutMs }}
{{- end }}
{{- if hasKey $u "maxResponseBytes" }}
max_response_bytes = {{ int64 $u.maxResponseBytes }}
{{- end }}
{{- range $key, $toml := dict "maxConcurrency" "max_concurrency" "retries" "retries" "retryBudgetPercent" "retry_budget_percent" "breakerFailures" "breaker_failures" "breakerOpenMs" "breaker_open_ms" }}
{{- if hasKey $u $key }}
{{ $toml }} = {{ int64 (get $u $key) }}
{{- end }}
{{- end }}
credentials = {{ include "bru.credentialsToml" (dict "name" $name "c" $u.credentials "root" $) }}
{{- end }}
{{- with $c.catalog }}

[catalog]
{{- with .publisher }}
publisher = {{ . | toJson }}
{{- end }}
{{- with .contactEmail }}
contact_email = {{ . | toJson }}
{{- end }}
{{- with .contactUrl }}
contact_url = {{ . | toJson }}
{{- end }}
{{- with .defaultThemes }}
default_themes = {{ . | toJson }}
{{- end }}
{{- with .themes }}

[catalog.themes]
{{- range $dataset, $themes := . }}
{{ $dataset | toJson }} = {{ $themes | toJson }}
{{- end }}
{{- end }}
{{- end }}
{{- with $c.altinn }}

[altinn]
{{- with .eventsUrl }}
events_url = {{ . | toJson }}
{{- end }}
{{- with .eventsTokenEnv }}
events_token_env = {{ . | toJson }}
{{- end }}
{{- if hasKey . "pollIntervalSeconds" }}
poll_interval_seconds = {{ int64 .pollIntervalSeconds }}
{{- end }}
{{- with .pdpUrl }}
pdp_url = {{ . | toJson }}
{{- end }}
{{- if hasKey . "pdpCacheSeconds" }}
pdp_cache_seconds = {{ int64 .pdpCacheSeconds }}
{{- end }}
{{- if hasKey . "pdpTimeoutMs" }}
pdp_timeout_ms = {{ int64 .pdpTimeoutMs }}
{{- end }}
{{- end }}
{{- end -}}
