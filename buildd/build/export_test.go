package build

// InstallScript is installScript, for BenchmarkNoSync.
var InstallScript = installScript
