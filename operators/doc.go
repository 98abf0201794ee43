// Package operators holds ready-made task types beyond in-process Go functions:
// Bash runs a templated shell command in a child process. Each operator is a task
// (it embeds task.Def), so it takes the same options (retries, timeout, pool,
// trigger rule, executor) and is linked with Then like any other task.
package operators
