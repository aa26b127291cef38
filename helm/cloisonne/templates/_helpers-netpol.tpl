{{- /*
  cloisonne.netpol.releasePeer: a NetworkPolicy peer for pods of one component of this
  release. From a project namespace the release namespace must be named explicitly.
  Usage: - {{ include "cloisonne.netpol.releasePeer" (dict "root" $ "component" "hub") | nindent 4 | trim }}
*/}}
{{- define "cloisonne.netpol.releasePeer" -}}
namespaceSelector:
  matchLabels:
    kubernetes.io/metadata.name: {{ .root.Release.Namespace }}
podSelector:
  matchLabels:
    {{- include "cloisonne.selectorLabels" . | nindent 4 }}
{{- end }}

{{- /*
  cloisonne.netpol.workspacePeer: any workspace or Dask pod of any project of this release.
  Project namespaces carry cloisonne.io/project-namespace=<release>; workspace pods carry
  cloisonne.io/project (set by the WorkspacePlan).
  Usage: - {{ include "cloisonne.netpol.workspacePeer" $ | nindent 4 | trim }}
*/}}
{{- define "cloisonne.netpol.workspacePeer" -}}
namespaceSelector:
  matchLabels:
    cloisonne.io/project-namespace: {{ .Release.Name }}
podSelector:
  matchExpressions:
    - {key: cloisonne.io/project, operator: Exists}
{{- end }}

{{- /*
  cloisonne.netpol.dnsEgress: an egress rule allowing DNS queries to the cluster DNS pods
  only (not to any resolver on the internet, a classic exfiltration channel).
  Usage: egress: - {{ include "cloisonne.netpol.dnsEgress" $ | nindent 6 | trim }}
*/}}
{{- define "cloisonne.netpol.dnsEgress" -}}
to:
  - namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {{ .Values.dns.namespace }}
    podSelector:
      matchLabels:
        {{- toYaml .Values.dns.podLabels | nindent 8 }}
ports:
  - {port: 53, protocol: UDP}
  - {port: 53, protocol: TCP}
{{- end }}

{{- /*
  cloisonne.netpol.endpointPeers: the peers of an endpoint of a project (its S3 store or an
  extra egress): CIDRs and/or namespace+pod selectors, never an empty (= everything) list.
  Usage: to: {{- include "cloisonne.netpol.endpointPeers" $project.s3 | trim | nindent 4 }}
*/}}
{{- define "cloisonne.netpol.endpointPeers" -}}
{{- range .cidrs }}
- ipBlock:
    cidr: {{ . }}
{{- end }}
{{- if .namespaceSelector }}
- namespaceSelector:
    matchLabels:
      {{- toYaml .namespaceSelector | nindent 6 }}
  {{- with .podSelector }}
  podSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end }}
{{- end }}
