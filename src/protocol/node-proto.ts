/**
 * The node protocol's gRPC definitions (proto/hush/v1/node.proto), loaded once
 * and shared by the store's server and the agent's client. Field names keep
 * the proto's snake_case; 64-bit numbers arrive as JS numbers; bytes as Buffer.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

const PROTO_PATH = fileURLToPath(new URL('../../proto/hush/v1/node.proto', import.meta.url));

export interface WireContainer {
  id: string;
  service: string;
  /** Runtime identity (e.g. "docker", its container id and name), once known; '' or absent otherwise. */
  runtime?: string;
  runtime_id?: string;
  runtime_name?: string;
}
export interface WireGrant {
  source: string;
  target: string;
  uid: number;
  gid: number;
  mode: number;
  /** Decoded as false when absent (proto3 default). */
  template?: boolean;
}
export interface WireServiceGrants {
  service: string;
  grants: WireGrant[];
}
export interface WireSecretVersion {
  name: string;
  version: number;
  data: Buffer;
  created_at_ms: number;
  /** The secret's id ('' from a store that predates it): (secret_id, version) names one value; a recreated secret restarts at version 1. */
  secret_id?: string;
}
export interface WireSnapshot {
  revision: number;
  secrets: WireSecretVersion[];
  services: WireServiceGrants[];
  /** The heartbeat period the store expects of this session; 0 (or absent) from a store that predates it (timing.ts). */
  heartbeat_period_ms?: number;
}
export interface WireDelta {
  revision: number;
  upserts: WireSecretVersion[];
  removals: string[];
  services: WireServiceGrants[];
  removed_services: string[];
  /** Nonzero only on the first message of a resumed session: the Hello's last_revision, the held state it applies to. */
  base_revision?: number;
  /** With base_revision: as WireSnapshot's. */
  heartbeat_period_ms?: number;
}
/** A secret version the agent holds, named in a resuming Hello (never a value). */
export interface WireHeldSecret {
  name: string;
  secret_id: string;
  version: number;
}
export interface WireHello {
  containers: WireContainer[];
  last_revision: number;
  /** The agent holds exactly `held` and `held_services` at last_revision and takes a Delta over them; false from an older agent. */
  resume?: boolean;
  held?: WireHeldSecret[];
  held_services?: string[];
}
export interface WireDecision {
  request_id: string;
  allowed: boolean;
  reason: string;
  revision: number;
}
/** One container's reads of one secret version (ReadReport in node.proto): never a value. */
export interface WireReadEntry {
  container_id: string;
  secret: string;
  version: number;
  first_read_at_ms: number;
  /** 0 while the container's mount still holds the version. */
  released_at_ms: number;
}
/**
 * Entries one ReadReport may carry. Both sides use it: the agent sends the
 * rest in later reports, the store refuses a report over it. 256 entries of
 * ~100 bytes stay far below NodeLimits.maxMessageBytes.
 */
export const MAX_READ_ENTRIES_PER_REPORT = 256;
export type StoreMessage =
  | { body: 'snapshot'; snapshot: WireSnapshot }
  | { body: 'delta'; delta: WireDelta }
  | { body: 'decision'; decision: WireDecision };
export type AgentMessage =
  | { body: 'hello'; hello: WireHello }
  | { body: 'ack'; ack: { revision: number } }
  | { body: 'heartbeat'; heartbeat: { sent_at_ms: number } }
  | { body: 'container_start'; container_start: { request_id: string; container: WireContainer } }
  | { body: 'container_stop'; container_stop: { container_id: string } }
  | { body: 'read_report'; read_report: { entries: WireReadEntry[] } }
  | { body: 'container_identified'; container_identified: { container: WireContainer } };
export interface JoinRequest {
  token: string;
  csr_pem: string;
  name: string;
  hostname: string;
  labels: Record<string, string>;
}
export interface JoinResponse {
  node_id: string;
  certificate_pem: string;
  ca_pem: string;
  /** During a CA rotation: the active CA cross-signed by the previous one; '' otherwise. */
  ca_cross_pem?: string;
}
export interface RenewRequest {
  csr_pem: string;
}
export interface RenewResponse {
  certificate_pem: string;
  /** The issuing (active) CA, and its cross certificate during a rotation; '' from an older store. */
  ca_pem?: string;
  ca_cross_pem?: string;
}

let service: grpc.ServiceDefinition | undefined;
let clientCtor: grpc.ServiceClientConstructor | undefined;

function load(): { service: grpc.ServiceDefinition; client: grpc.ServiceClientConstructor } {
  if (!service || !clientCtor) {
    const definition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { hush: { v1: { NodeService: grpc.ServiceClientConstructor } } };
    clientCtor = pkg.hush.v1.NodeService;
    service = clientCtor.service;
  }
  return { service, client: clientCtor };
}

export function nodeServiceDefinition(): grpc.ServiceDefinition {
  return load().service;
}

export function nodeServiceClient(): grpc.ServiceClientConstructor {
  return load().client;
}

/**
 * The name agents verify the store's certificate against, whatever address
 * they dial (like Swarm's "swarm-manager"): the certificate is trusted for
 * being issued by the cluster CA, not for a DNS name, so IPs, NAT and
 * renamed hosts all work, and TLS never gets an IP as its server name.
 */
export const STORE_TLS_NAME = 'hush-store';

/**
 * Largest message the store sends and the agent accepts: a snapshot can carry
 * many 500 KiB values. Only this direction is large; what the store accepts
 * from agents is NodeLimits.maxMessageBytes (1 MiB by default).
 */
export const GRPC_MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024;
