{{- /*
  cloisonne.labels: the common labels of every object, with its component.
  Usage: {{- include "cloisonne.labels" (dict "root" $ "component" "hub") | nindent 4 }}
*/}}
{{- define "cloisonne.labels" -}}
app.kubernetes.io/name: cloisonne
app.kubernetes.io/part-of: cloisonne
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{ include "cloisonne.selectorLabels" . }}
{{- end }}

{{- /*
  cloisonne.selectorLabels: the labels Deployments, Services and NetworkPolicies select on.
  They never change across upgrades (a Deployment's selector is immutable).
  Usage: {{- include "cloisonne.selectorLabels" (dict "root" $ "component" "proxy") | nindent 6 }}
*/}}
{{- define "cloisonne.selectorLabels" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
cloisonne.io/component: {{ .component }}
{{- end }}

{{- /*
  cloisonne.projectNamespace: the namespace of a project. ProjectKubeSpawner's
  project_namespace_template must agree (the hub config passes this same string).
  Usage: {{ include "cloisonne.projectNamespace" $project.id }}
*/}}
{{- define "cloisonne.projectNamespace" -}}
cloisonne-{{ . }}
{{- end }}

{{- /*
  cloisonne.image: "name:tag" of an image values block.
  Usage: image: {{ include "cloisonne.image" .Values.hub.image }}
*/}}
{{- define "cloisonne.image" -}}
{{ .name }}:{{ .tag }}
{{- end }}

{{- /*
  cloisonne.hubUrl: the hub API as workspaces in project namespaces reach it (a fully
  qualified name, since they run in other namespaces).
  Usage: {{ include "cloisonne.hubUrl" $ }}
*/}}
{{- define "cloisonne.hubUrl" -}}
http://hub.{{ .Release.Namespace }}.svc.cluster.local:8081
{{- end }}

{{- /*
  cloisonne.serviceHost: the cloisonne service's host name, for workspaces and the hub.
  Usage: {{ include "cloisonne.serviceHost" $ }}
*/}}
{{- define "cloisonne.serviceHost" -}}
cloisonne-service.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{- /*
  cloisonne.packagesHost: the package proxy's Service, as workspaces name it.
  Usage: {{ include "cloisonne.packagesHost" . }}
*/}}
{{- define "cloisonne.packagesHost" -}}
cloisonne-packages.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{- /*
  cloisonne.podSecurityContext: the restricted Pod Security profile for the chart's own pods.
  Usage: securityContext: {{- include "cloisonne.podSecurityContext" 1000 | nindent 8 }}
*/}}
{{- define "cloisonne.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- /*
  cloisonne.containerSecurityContext: no privilege, no capabilities, read-only root.
  Every container of the chart uses it; tests check that none is privileged.
  Usage: securityContext: {{- include "cloisonne.containerSecurityContext" . | nindent 12 }}
*/}}
{{- define "cloisonne.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}
