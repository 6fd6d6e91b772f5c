{{/*
bru.toml (docs/config.md). Relative paths are relative to /etc/bru; Secrets
are mounted under bru.secretsDir and named by absolute path.
*/}}
{{- define "bru.toml" -}}
{{- include "bru.tomlFor" (dict "root" . "migrate" false) -}}
{{- end -}}

{{/*
The migration Job's copy leaves out the upstreams: `bru migrate` opens only
the store, and an upstream with assertion = "hs256" has its secret read when
the file is loaded, so the Job would need every provider's secret mounted.
Argument: dict "root" $ "migrate" <bool>
*/}}
{{- define "bru.tomlFor" -}}
{{- $root := .root -}}
{{- $migrate := .migrate -}}
{{- $secrets := include "bru.secretsDir" $root -}}
{{- $c := $root.Values.config -}}
# Rendered by the Helm chart {{ include "bru.chart" $root }}; change the values, not this file.
{{- if $migrate }}
# The migration Job's copy: the gateway's bru.toml without [upstream.*].
{{- end }}
policy = "policy.toml"
public_url = {{ include "bru.publicUrl" $root | toJson }}
allow_synthetic_ids = false

[server]
listen = "0.0.0.0:{{ include "bru.publicPort" $root }}"
ops_listen = "0.0.0.0:{{ include "bru.opsPort" $root }}"
tls_cert = {{ printf "%s/tls/tls.crt" $secrets | toJson }}
tls_key = {{ printf "%s/tls/tls.key" $secrets | toJson }}
max_header_bytes = {{ int64 $c.server.maxHeaderBytes }}
max_body_bytes = {{ int64 $c.server.maxBodyBytes }}
header_read_timeout_ms = {{ int64 $c.server.headerReadTimeoutMs }}
body_read_timeout_ms = {{ int64 $c.server.bodyReadTimeoutMs }}
http2_idle_timeout_ms = {{ int64 $c.server.http2IdleTimeoutMs }}
max_connections_per_address = {{ int64 $c.server.maxConnectionsPerAddress }}
shutdown_grace_ms = {{ int64 $c.server.shutdownGraceMs }}
{{- if hasKey $c.server "maxHeaders" }}
max_headers = {{ int64 $c.server.maxHeaders }}
{{- end }}
{{- if $c.server.hstsIncludeSubdomains }}
hsts_include_subdomains = true
{{- end }}
{{- if $c.server.runtime }}
runtime = {{ $c.server.runtime | toJson }}
{{- end }}
{{- if $c.server.workers }}
workers = {{ int64 $c.server.workers }}
{{- end }}

[store]
url_file = {{ printf "%s/database/url" $secrets | toJson }}
audit_write_timeout_ms = {{ int64 $c.store.auditWriteTimeoutMs }}
{{- $dbtls := $root.Values.database.tls }}
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
{{- if $root.Values.keys.assertionEd25519Key }}
assertion_ed25519_key_file = {{ printf "%s/keys/assertion-ed25519.pem" $secrets | toJson }}
{{- end }}
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
{{- if and (eq ($u.assertion | default "es256") "eddsa") (not $root.Values.keys.assertionEd25519Key) }}
{{- fail (printf "config.upstreams.%s.assertion is eddsa: set keys.assertionEd25519Key (the Ed25519 key's item in the keys Secret)" $name) }}
{{- end }}
{{- if not $migrate }}

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
credentials = {{ include "bru.credentialsToml" (dict "name" $name "c" $u.credentials "root" $root) }}
{{- with $u.assertion }}
assertion = {{ . | toJson }}
{{- end }}
{{- if eq ($u.assertion | default "es256") "hs256" }}
assertion_secret_file = {{ include "bru.assertionSecretFile" (dict "name" $name "root" $root) | toJson }}
{{- end }}
{{- end }}
{{- end }}
{{- with $c.registry }}

[registry]
url = {{ .url | toJson }}
{{- if hasKey . "connectTimeoutMs" }}
connect_timeout_ms = {{ int64 .connectTimeoutMs }}
{{- end }}
{{- if hasKey . "requestTimeoutMs" }}
request_timeout_ms = {{ int64 .requestTimeoutMs }}
{{- end }}
{{- if hasKey . "maxResponseBytes" }}
max_response_bytes = {{ int64 .maxResponseBytes }}
{{- end }}
credentials = {{ include "bru.credentialsToml" (dict "name" "registry" "c" .credentials "root" $root "dir" (include "bru.registryDir" $root)) }}
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
{{- if .eventsTokenSecret }}
events_token_file = {{ printf "%s/altinn/events-token" $secrets | toJson }}
{{- else if .eventsTokenEnv }}
events_token_env = {{ .eventsTokenEnv | toJson }}
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
{{- if .caConfigMap }}
ca_file = "/etc/bru-altinn-ca/ca.crt"
{{- end }}
{{- end }}
{{- with $c.portal }}

[portal]
issuer = {{ .issuer | toJson }}
client_id = {{ .clientId | toJson }}
client_secret_file = {{ printf "%s/portal/client-secret" $secrets | toJson }}
{{- with .tokenEndpointAuth }}
token_endpoint_auth = {{ . | toJson }}
{{- end }}
{{- with .redirectUrl }}
redirect_url = {{ . | toJson }}
{{- end }}
{{- with .scope }}
scope = {{ . | toJson }}
{{- end }}
{{- with .acrValues }}
acr_values = {{ . | toJson }}
{{- end }}
{{- if .caConfigMap }}
ca_file = "/etc/bru-portal-ca/ca.crt"
{{- end }}
{{- if .subAsPid }}
sub_as_pid = true
{{- end }}
session_key_file = {{ printf "%s/portal/session.key" $secrets | toJson }}
{{- if hasKey . "idleTimeoutSeconds" }}
idle_timeout_s = {{ int64 .idleTimeoutSeconds }}
{{- end }}
{{- if hasKey . "absoluteTimeoutSeconds" }}
absolute_timeout_s = {{ int64 .absoluteTimeoutSeconds }}
{{- end }}
{{- end }}
{{- range $c.witnesses }}

[[witness]]
url = {{ .url | toJson }}
key = {{ .key | toJson }}
{{- end }}
{{- end -}}
