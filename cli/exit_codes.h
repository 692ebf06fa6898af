#pragma once

namespace den::cli {

/// Exit codes of the `den` executable (docs/exit-codes.md, with the test of each).
enum ExitCode : int {
  kOk = 0,
  kInternalError = 1,  ///< a bug: an unexpected exception
  kUsageError = 2,     ///< bad flags or settings (unknown flag, invalid value, too many tasks)
  kDataError = 3,      ///< bad input data (missing/malformed files, bad labels, NaN, wrong shapes)
  kOutputError = 4,    ///< an output file (--report, --checkpoint, export -o) cannot be written; nothing overwritten
  kCheckpointError = 5,    ///< a checkpoint cannot be used: missing, not a checkpoint, truncated, corrupt
                           ///< (checksum), or its tensors do not match its graph
  kCheckpointVersion = 6,  ///< a checkpoint written in a newer format version than this den reads
  kImportError = 7,        ///< den import: the model is missing, no TorchScript, or has a layer den cannot map
  kCheckpointLacksState = 8,  ///< a valid checkpoint without the state asked for (task-agnostic predict from
                              ///< a checkpoint before format 2)
  kTrainingDiverged = 9,   ///< a loss became NaN or infinite (engine::TrainingDiverged); the last good
                           ///< checkpoint is kept, no checkpoint of the diverged task is written
  kInterrupted = 130,      ///< stopped by SIGINT / SIGTERM (128 + SIGINT, as shells report it); work
                           ///< kept: checkpoint of the last task, report marked partial
};

}  // namespace den::cli
