{{/* Names, labels and the two command lines, shared by the templates. */}}

{{- define "bert.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bert.fullname" -}}
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

{{/* The front's name: its Deployment, its (single-pod) Service and the workers' -ip. */}}
{{- define "bert.front" -}}
{{- printf "%s-front" (include "bert.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bert.worker" -}}
{{- printf "%s-worker" (include "bert.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bert.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/name: {{ include "bert.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component (front or worker): call with (list . "front"). */}}
{{- define "bert.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "bert.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "bert.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{- define "bert.curveSecret" -}}
{{- default (printf "%s-curve" (include "bert.fullname" .)) .Values.curve.existingSecret -}}
{{- end -}}

{{- define "bert.curveClientsSecret" -}}
{{- default (printf "%s-curve-clients" (include "bert.fullname" .)) .Values.curve.existingClientKeysSecret -}}
{{- end -}}

{{- define "bert.hasClientKeys" -}}
{{- if or .Values.curve.clientKeys .Values.curve.existingClientKeysSecret -}}true{{- end -}}
{{- end -}}

{{- define "bert.httpSecret" -}}
{{- default (printf "%s-http" (include "bert.fullname" .)) .Values.http.existingSecret -}}
{{- end -}}

{{- define "bert.httpSecretKey" -}}
{{- if .Values.http.existingSecret -}}{{ .Values.http.existingSecretKey }}{{- else -}}api-key{{- end -}}
{{- end -}}

{{- define "bert.hasApiKey" -}}
{{- if or .Values.http.apiKey .Values.http.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* -model_dir only when a model volume is given; else the image's bundled model. */}}
{{- define "bert.modelArgs" -}}
{{- $args := list -}}
{{- if .Values.model.volume -}}
{{- $args = list "-model_dir" .Values.model.mountPath -}}
{{- end -}}
{{- range .Values.model.args -}}
{{- $args = append $args (toString .) -}}
{{- end -}}
{{- toJson $args -}}
{{- end -}}

{{/* bert-serving-start's arguments: the ports, the local workers, CURVE, the model. */}}
{{- define "bert.frontArgs" -}}
{{- $ports := .Values.ports -}}
{{- $args := list "-port" (toString $ports.requests) "-port_out" (toString $ports.results) "-port_worker" (toString $ports.workers) "-http_port" (toString $ports.http) "-num_worker" (toString .Values.front.numWorker) "-cpu" -}}
{{- if .Values.curve.enabled -}}
{{- $dir := .Values.curve.mountPath -}}
{{- $args = concat $args (list "-curve_secret_key" (printf "%s/keys/front.key_secret" $dir) "-curve_worker_keys" (printf "%s/keys/workers" $dir)) -}}
{{- if include "bert.hasClientKeys" . -}}
{{- $args = concat $args (list "-curve_client_keys" (printf "%s/clients" $dir)) -}}
{{- end -}}
{{- end -}}
{{- $args = concat $args (include "bert.modelArgs" . | fromJsonArray) -}}
{{- range .Values.front.extraArgs -}}
{{- $args = append $args (toString .) -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}

{{/* bert-serving-worker's arguments: where the front is, how many devices, the model. */}}
{{- define "bert.workerArgs" -}}
{{- $count := .Values.worker.numWorker -}}
{{- if .Values.worker.gpu.enabled -}}
{{- $count = .Values.worker.gpu.count -}}
{{- end -}}
{{- $args := list "-ip" (include "bert.front" .) "-port_worker" (toString .Values.ports.workers) "-num_worker" (toString $count) -}}
{{- if not .Values.worker.gpu.enabled -}}
{{- $args = append $args "-cpu" -}}
{{- end -}}
{{- if .Values.curve.enabled -}}
{{- $dir := .Values.curve.mountPath -}}
{{- $args = concat $args (list "-curve_server_key" (printf "%s/keys/front.key" $dir) "-curve_secret_key" (printf "%s/keys/worker.key_secret" $dir)) -}}
{{- end -}}
{{- $args = concat $args (include "bert.modelArgs" . | fromJsonArray) -}}
{{- range .Values.worker.extraArgs -}}
{{- $args = append $args (toString .) -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}

{{- define "bert.checks" -}}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled -}}
{{- fail "autoscaling.enabled and keda.enabled are exclusive: KEDA makes its own HPA for the workers" -}}
{{- end -}}
{{- if and .Values.curve.enabled (not .Values.curve.existingSecret) -}}
{{- range list "frontSecretKey" "frontPublicKey" "workerSecretKey" "workerPublicKey" -}}
{{- if not (index $.Values.curve .) -}}
{{- fail (printf "curve.enabled needs curve.%s (or curve.existingSecret)" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
