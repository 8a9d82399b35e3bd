/// The version of Annals.
public enum AnnalsVersion {
    /// The version string, `major.minor.patch`.
    public static let current = "0.1.0"
}
