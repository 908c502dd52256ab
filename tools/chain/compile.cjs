// Compiles one Solidity file offline with solc-js and prints {contract: {abi, bytecode}} as JSON.
// Usage: node compile.cjs FILE.sol
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const file = process.argv[2];
const input = {
  language: "Solidity",
  sources: { [path.basename(file)]: { content: fs.readFileSync(file, "utf8") } },
  settings: {
    evmVersion: "shanghai",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const result = { compiler: solc.version() };
for (const contracts of Object.values(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    result[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  }
}
process.stdout.write(JSON.stringify(result, null, 1) + "\n");
