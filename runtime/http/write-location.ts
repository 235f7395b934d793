/**
 * Read-your-writes across requests: the write location (where PostgreSQL's WAL stood after a request's
 * writes, `16/B374D848`) goes back to the client in a response header and a short cookie, and comes
 * back on its next request (the header, else the cookie), whose reads then skip replicas that have not
 * replayed it (Database.withSession's `after`). A browser carries the cookie by itself; an API client
 * echoes the header. The cookie lasts a minute: a replica that far behind is out of rotation anyway
 * (maxLagMs), so an older location has nothing left to wait for.
 */
import type { IncomingHttpHeaders } from "node:http";

/** Response and request header. */
export const WRITE_LOCATION_HTTP_HEADER = "shopfds-write-location";
export const WRITE_LOCATION_COOKIE = "shopfds_wl";
const COOKIE_MAX_AGE_SECONDS = 60;
const COOKIE = new RegExp(`(?:^|;\\s*)${WRITE_LOCATION_COOKIE}=([^;]*)`);

/** The location a request carries: its header, else its cookie (unchecked: the router ignores one that is not a location). */
export function carriedWriteLocation(headers: IncomingHttpHeaders): string | undefined {
  const header = headers[WRITE_LOCATION_HTTP_HEADER];
  if (typeof header === "string" && header !== "") return header;
  const cookie = typeof headers.cookie === "string" ? COOKIE.exec(headers.cookie)?.[1] : undefined;
  return cookie ? decodeURIComponent(cookie) : undefined;
}

/** The Set-Cookie value for `location`. */
export function writeLocationCookie(location: string): string {
  return `${WRITE_LOCATION_COOKIE}=${encodeURIComponent(location)}; Max-Age=${COOKIE_MAX_AGE_SECONDS}; Path=/; HttpOnly; SameSite=Lax`;
}
