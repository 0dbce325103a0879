#!/usr/bin/env node
import { agentCommand } from '../dist/index.js';

await agentCommand('hive-agent').parseAsync(process.argv);
