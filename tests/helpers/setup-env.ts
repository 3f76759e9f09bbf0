/**
 * Gives every integration test file its own database namespace, Redis prefix
 * and broker name, so parallel files and repeated runs never collide, and a
 * data dir of its own under the system temp dir.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

const id = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
process.env.DB_NAMESPACE = `${id}_`;
process.env.REDIS_PREFIX = `${id}:`;
process.env.BROKER_NAME = id;
process.env.DATA_DIR = path.join(os.tmpdir(), 'saasodoo-tests', id);
process.env.LOG_LEVEL ??= 'warn';
process.env.NODE_ENV = 'test';
