{{/*
Names, labels and the few derived values every template shares.
*/}}

{{- define "bru.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bru.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "bru.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bru.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bru.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The gateway pods only (not the migration Job's): Deployment, Services, PDB, spreading. */}}
{{- define "bru.gatewaySelectorLabels" -}}
{{ include "bru.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "bru.labels" -}}
helm.sh/chart: {{ include "bru.chart" . }}
{{ include "bru.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bru
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "bru.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bru.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository[:tag][@digest]; the digest wins when both are set. */}}
{{- define "bru.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Fixed ports: bru.toml, the probes, the Services and the NetworkPolicy agree on them. */}}
{{- define "bru.publicPort" -}}8443{{- end -}}
{{- define "bru.opsPort" -}}9090{{- end -}}

{{/* Where Secrets are mounted; bru.toml names these absolute paths. */}}
{{- define "bru.secretsDir" -}}/var/run/secrets/bru{{- end -}}

{{- define "bru.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "bru.fullname" .)) .Values.tls.secretName -}}
{{- end -}}
{{- define "bru.keysSecretName" -}}
{{- default (printf "%s-keys" (include "bru.fullname" .)) .Values.keys.secretName -}}
{{- end -}}
{{- define "bru.databaseSecretName" -}}
{{- default (printf "%s-database" (include "bru.fullname" .)) .Values.database.secretName -}}
{{- end -}}
{{- define "bru.databaseCaSecretName" -}}
{{- default (printf "%s-database-ca" (include "bru.fullname" .)) .Values.database.tls.caSecretName -}}
{{- end -}}

{{/*
The database volume of the gateway and the migration Job: the URL and, with
TLS, the CA and the optional client certificate, all under
{bru.secretsDir}/database (bru.toml's [store] names these paths).
*/}}
{{- define "bru.databaseVolume" -}}
- name: database
  projected:
    defaultMode: 0400
    sources:
      - secret:
          name: {{ include "bru.databaseSecretName" . }}
          items:
            - key: {{ .Values.database.key }}
              path: url
      {{- if eq .Values.database.tls.mode "verify-full" }}
      - secret:
          name: {{ include "bru.databaseCaSecretName" . }}
          items:
            - key: {{ .Values.database.tls.caKey }}
              path: ca.crt
      {{- with .Values.database.tls.clientSecretName }}
      - secret:
          name: {{ . }}
          items:
            - key: tls.crt
              path: client.crt
            - key: tls.key
              path: client.key
      {{- end }}
      {{- end }}
{{- end -}}
{{- define "bru.policyConfigMapName" -}}
{{- default (printf "%s-policy" (include "bru.fullname" .)) .Values.policy.existingConfigMap -}}
{{- end -}}

{{- define "bru.publicUrl" -}}
{{- default (printf "https://%s.%s.svc" (include "bru.fullname" .) .Release.Namespace) .Values.config.publicUrl -}}
{{- end -}}

{{/* Seconds Kubernetes waits after SIGTERM: preStop sleep + Bru's shutdown grace + time to write the last outcome records. */}}
{{- define "bru.terminationGracePeriodSeconds" -}}
{{- $min := add (div (add (int64 .Values.config.server.shutdownGraceMs) 999) 1000) (int64 .Values.preStopSleepSeconds) -}}
{{- if .Values.terminationGracePeriodSeconds -}}
{{- if le (int64 .Values.terminationGracePeriodSeconds) $min -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + config.server.shutdownGraceMs in seconds (%v)" .Values.terminationGracePeriodSeconds $min) -}}
{{- end -}}
{{- int64 .Values.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add $min 15 -}}
{{- end -}}
{{- end -}}

{{/* The Prometheus selector for this release's ops targets, for alerts. */}}
{{- define "bru.promSelector" -}}
job="{{ include "bru.fullname" . }}-ops",namespace="{{ .Release.Namespace }}"
{{- end -}}

{{/* Pod- and container-level security context, shared by the gateway and the migration Job. */}}
{{- define "bru.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
# Secret files are mode 0400 owned by root; fsGroup makes them group-readable (0440) for this GID only.
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "bru.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Upstream credentials. One place maps the chart's values to bru.toml keys and
to the files mounted from each upstream's Secret.
  none    -> { kind = "none" }
  bearer  -> token_file
  header  -> name, value_file
  mtls    -> cert_file, key_file, ca_file
  oauth2  -> token_url, audience, client_id, scope, [resource], [kid], [algorithm], key_file
             (a JWT-bearer grant, RFC 7523, signed with the key in the Secret)
Argument: dict "name" <upstream id> "c" <credentials values> "root" $
*/}}
{{- define "bru.upstreamDir" -}}
{{- printf "%s/upstreams/%s" (include "bru.secretsDir" .root) .name -}}
{{- end -}}

{{/* The registry's credentials ([registry], SPEC 9.3): its own directory, whatever the upstreams are called. */}}
{{- define "bru.registryDir" -}}
{{- printf "%s/registry" (include "bru.secretsDir" .) -}}
{{- end -}}

{{/*
An upstream's HS256 assertion secret (assertion = "hs256", SPEC 12): one
file, mounted from assertionSecret.secretName, never in the ConfigMap.
Argument: dict "name" <upstream id> "root" $
*/}}
{{- define "bru.assertionSecretFile" -}}
{{- printf "%s/assertion/%s/secret.key" (include "bru.secretsDir" .root) .name -}}
{{- end -}}
{{- define "bru.assertionVolume" -}}
{{- printf "assertion-%s" . | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The secret and CA volumes of the optional sections ([registry], [altinn],
[portal]) and the upstreams' HS256 secrets: the mounts, then the volumes.
bru.toml names these paths.
*/}}
{{- define "bru.sectionMounts" -}}
{{- $secrets := include "bru.secretsDir" . -}}
{{- $c := .Values.config -}}
{{- range $name, $u := $c.upstreams }}
{{- if eq ($u.assertion | default "es256") "hs256" }}
- name: {{ include "bru.assertionVolume" $name }}
  mountPath: {{ printf "%s/assertion/%s" $secrets $name }}
  readOnly: true
{{- end }}
{{- end }}
{{- with $c.registry }}
{{- if include "bru.credentialsItems" (dict "name" "registry" "c" .credentials) }}
- name: registry
  mountPath: {{ include "bru.registryDir" $ }}
  readOnly: true
{{- end }}
{{- end }}
{{- with $c.altinn }}
{{- if .eventsTokenSecret }}
- name: altinn
  mountPath: {{ $secrets }}/altinn
  readOnly: true
{{- end }}
{{- if .caConfigMap }}
- name: altinn-ca
  mountPath: /etc/bru-altinn-ca
  readOnly: true
{{- end }}
{{- end }}
{{- with $c.portal }}
- name: portal
  mountPath: {{ $secrets }}/portal
  readOnly: true
{{- if .caConfigMap }}
- name: portal-ca
  mountPath: /etc/bru-portal-ca
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{- define "bru.sectionVolumes" -}}
{{- $c := .Values.config -}}
{{- $seen := dict -}}
{{- range $name, $u := $c.upstreams }}
{{- if eq ($u.assertion | default "es256") "hs256" }}
{{- $s := required (printf "config.upstreams.%s.assertionSecret is required with assertion hs256" $name) $u.assertionSecret }}
{{- /* One secret per provider: with a shared one, either could forge assertions to the other. */}}
{{- $ref := printf "%s/%s" $s.secretName ($s.key | default "assertion.key") }}
{{- with get $seen $ref }}
{{- fail (printf "config.upstreams.%s and %s share the HS256 assertion secret %s; each provider needs its own" . $name $ref) }}
{{- end }}
{{- $_ := set $seen $ref $name }}
- name: {{ include "bru.assertionVolume" $name }}
  secret:
    secretName: {{ required (printf "config.upstreams.%s.assertionSecret.secretName is required" $name) $s.secretName }}
    defaultMode: 0400
    items:
      - key: {{ $s.key | default "assertion.key" }}
        path: secret.key
{{- end }}
{{- end }}
{{- with $c.registry }}
{{- $items := include "bru.credentialsItems" (dict "name" "registry" "c" .credentials) }}
{{- if $items }}
- name: registry
  secret:
    secretName: {{ required "config.registry.credentials.secretName is required" .credentials.secretName }}
    defaultMode: 0400
    items:
      {{- $items | nindent 6 }}
{{- end }}
{{- end }}
{{- with $c.altinn }}
{{- with .eventsTokenSecret }}
- name: altinn
  secret:
    secretName: {{ required "config.altinn.eventsTokenSecret.secretName is required" .secretName }}
    defaultMode: 0400
    items:
      - key: {{ .key | default "token" }}
        path: events-token
{{- end }}
{{- with .caConfigMap }}
- name: altinn-ca
  configMap:
    name: {{ .name }}
    defaultMode: 0444
    items:
      - key: {{ .key | default "ca.crt" }}
        path: ca.crt
{{- end }}
{{- end }}
{{- with $c.portal }}
- name: portal
  projected:
    defaultMode: 0400
    sources:
      - secret:
          name: {{ required "config.portal.clientSecret.secretName is required" .clientSecret.secretName }}
          items:
            - key: {{ .clientSecret.key | default "client-secret" }}
              path: client-secret
      - secret:
          name: {{ required "config.portal.sessionKey.secretName is required" .sessionKey.secretName }}
          items:
            - key: {{ .sessionKey.key | default "session.key" }}
              path: session.key
{{- with .caConfigMap }}
- name: portal-ca
  configMap:
    name: {{ .name }}
    defaultMode: 0444
    items:
      - key: {{ .key | default "ca.crt" }}
        path: ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{- define "bru.credentialsToml" -}}
{{- $c := .c | default dict -}}
{{- $dir := .dir | default (include "bru.upstreamDir" .) -}}
{{- $kind := $c.kind | default "none" -}}
{{- if eq $kind "none" -}}
{ kind = "none" }
{{- else if eq $kind "bearer" -}}
{ kind = "bearer", token_file = {{ printf "%s/token" $dir | toJson }} }
{{- else if eq $kind "header" -}}
{ kind = "header", name = {{ $c.headerName | toJson }}, value_file = {{ printf "%s/value" $dir | toJson }} }
{{- else if eq $kind "mtls" -}}
{ kind = "mtls", cert_file = {{ printf "%s/tls.crt" $dir | toJson }}, key_file = {{ printf "%s/tls.key" $dir | toJson }}, ca_file = {{ printf "%s/ca.crt" $dir | toJson }} }
{{- else if eq $kind "oauth2" -}}
{ kind = "oauth2", token_url = {{ $c.tokenUrl | toJson }}, audience = {{ $c.audience | toJson }}, client_id = {{ $c.clientId | toJson }}, scope = {{ $c.scope | toJson }}
{{- with $c.resource }}, resource = {{ . | toJson }}{{ end }}
{{- with $c.kid }}, kid = {{ . | toJson }}{{ end }}
{{- with $c.algorithm }}, algorithm = {{ . | toJson }}{{ end }}, key_file = {{ printf "%s/key.pem" $dir | toJson }} }
{{- else -}}
{{- fail (printf "upstreams.%s.credentials.kind %q is not one of none, bearer, header, mtls, oauth2" .name $kind) -}}
{{- end -}}
{{- end -}}

{{/* The Secret items an upstream's credentials need: key in the Secret -> file name. Empty for kind none. */}}
{{- define "bru.credentialsItems" -}}
{{- $c := .c | default dict -}}
{{- $kind := $c.kind | default "none" -}}
{{- if eq $kind "bearer" }}
- key: {{ $c.tokenKey | default "token" }}
  path: token
{{- else if eq $kind "header" }}
- key: {{ $c.valueKey | default "value" }}
  path: value
{{- else if eq $kind "mtls" }}
- key: {{ $c.certKey | default "tls.crt" }}
  path: tls.crt
- key: {{ $c.keyKey | default "tls.key" }}
  path: tls.key
- key: {{ $c.caKey | default "ca.crt" }}
  path: ca.crt
{{- else if eq $kind "oauth2" }}
- key: {{ $c.keyKey | default "key.pem" }}
  path: key.pem
{{- end }}
{{- end -}}

{{/* The volume name of an upstream's credentials Secret. */}}
{{- define "bru.upstreamVolume" -}}
{{- printf "upstream-%s" . | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The TCP port of an http(s) URL: explicit, or 443 / 80 by scheme. */}}
{{- define "bru.urlPort" -}}
{{- $url := urlParse . -}}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $url.host) -}}
{{- if $port -}}{{ $port }}{{- else if eq $url.scheme "http" -}}80{{- else -}}443{{- end -}}
{{- end -}}

{{/* A tag can be moved, so without a digest the kubelet asks the registry every time. */}}
{{- define "bru.imagePullPolicy" -}}
{{- if .Values.image.pullPolicy -}}
{{- .Values.image.pullPolicy -}}
{{- else if .Values.image.digest -}}
IfNotPresent
{{- else -}}
Always
{{- end -}}
{{- end -}}
