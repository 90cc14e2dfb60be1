/** What an alert says, before it is shaped for Slack or Discord (payloads.ts). */
export type AlertKind = 'job_failed' | 'jobs_failed' | 'long_job' | 'long_jobs' | 'fault' | 'fault_cleared' | 'crash';

export interface Alert {
  kind: AlertKind;
  /** One line: what happened. */
  title: string;
  /** Details, a few lines at most. Already redacted. */
  text: string;
  fields: { name: string; value: string }[];
  severity: 'error' | 'warning' | 'ok';
  worker: string;
  at: Date;
}

/** Webhook payload style, by RAG_ALERT_FORMAT or the URL's host. */
export type AlertFormat = 'slack' | 'discord';

/** auto: Discord for discord.com / discordapp.com hosts and Discord's /api/webhooks/<id>/<token> path (a proxy's), else Slack. */
export function formatOf(url: string, setting: 'auto' | AlertFormat): AlertFormat {
  if (setting !== 'auto') return setting;
  const { hostname, pathname } = new URL(url);
  return /(^|\.)discord(app)?\.com$/.test(hostname) || /^\/api(\/v\d+)?\/webhooks\/\d+\/[^/]+/.test(pathname) ? 'discord' : 'slack';
}
