export { buildCli, main } from './main.js';
