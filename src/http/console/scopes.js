// The nine scopes of the API, grouped by data source, with words for people.

export const GROUPS = [
  { name: 'Metrics', scopes: [
    ['read_only_metrics', 'Query metrics'],
    ['write_only_metrics', 'Push metrics'],
    ['full_access_metrics_rules', 'Manage recording and alerting rules'],
  ] },
  { name: 'Logs', scopes: [
    ['read_only_logs', 'Query logs'],
    ['write_only_logs', 'Push logs'],
    ['full_access_logs_rules', 'Manage log alerting rules'],
  ] },
  { name: 'Traces', scopes: [
    ['read_only_traces', 'Query traces'],
    ['write_only_traces', 'Push traces'],
  ] },
  { name: 'Alert manager', scopes: [
    ['full_access_alert_manager', 'Manage alerts, silences and contact points'],
  ] },
];

export const SCOPES = GROUPS.flatMap((g) => g.scopes.map(([id]) => id));
export const LABEL = Object.fromEntries(GROUPS.flatMap((g) => g.scopes));

/** Short chip words, e.g. "metrics · push". */
export const CHIP = {
  read_only_metrics: 'metrics · query', write_only_metrics: 'metrics · push',
  full_access_metrics_rules: 'metrics · rules', read_only_logs: 'logs · query',
  write_only_logs: 'logs · push', full_access_logs_rules: 'logs · rules',
  read_only_traces: 'traces · query', write_only_traces: 'traces · push',
  full_access_alert_manager: 'alert manager',
};
